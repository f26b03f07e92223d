#!/usr/bin/env bash
# Builds the guest agent binary: the agent's TypeScript bundled by esbuild
# into one ES2020 module, compiled to bytecode in C by QuickJS's qjsc, and
# linked statically with QuickJS (vendor/quickjs, 2021-03-27) and the
# agent's system-call module (agent/vmctr.c). One file, no libraries: it runs
# as /init of the agent image, and natively on the host in the agent tests.
#
# Cached under ${VMCTR_CACHE:-$HOME/.cache/vmctr}/agent/<hash>/vmctr-agent,
# the hash covering the bundle, the C sources, this script and the compiler;
# QuickJS's own objects and qjsc are cached by their sources' hash alone.
# Progress goes to stderr, the binary's path is the last line on stdout.
#
#   build-agent.sh          build if needed, print the path
#   build-agent.sh --path   print the cached path, or fail if not built
set -euo pipefail

self="$(readlink -f "${BASH_SOURCE[0]}")"
here="$(dirname "$self")"
repo="$(dirname "$here")"
cache="${VMCTR_CACHE:-$HOME/.cache/vmctr}"
die() { echo "build-agent: $*" >&2; exit 1; }
say() { echo "[agent] $*" >&2; }

esbuild="$repo/node_modules/.bin/esbuild"
vendor="$here/vendor/quickjs"
module_src="$here/agent/vmctr.c"
[[ -x $esbuild ]] || die "no esbuild at $esbuild: run npm ci"
command -v gcc >/dev/null || die "gcc is not installed"
version="$(cat "$vendor/VERSION")"
qjs_sources=(quickjs.c libregexp.c libunicode.c cutils.c quickjs-libc.c)
# Without CONFIG_BIGNUM: the agent needs no BigInt, and libbf is 240 KB of code.
cflags=(-Os -funsigned-char -ffunction-sections -fdata-sections)
qjs_defines=(-D_GNU_SOURCE "-DCONFIG_VERSION=\"$version\"")

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The bundle is the agent's exact code (esbuild is deterministic), so it is hashed instead of the sources.
"$esbuild" "$here/agent/main.ts" --bundle --format=esm --target=es2020 --platform=neutral \
  --external:os --external:std --external:vmctr --log-level=warning --outfile="$work/agent.js"

qjs_hash="$(cd "$vendor" && { sha256sum -- *; echo "${cflags[*]} ${qjs_defines[*]}"; gcc --version | head -1; } | sha256sum | cut -c1-16)"
hash="$(
  {
    cat "$self" "$work/agent.js" "$module_src"
    echo "quickjs=$qjs_hash"
  } | sha256sum | cut -c1-16
)"
out="$cache/agent/$hash/vmctr-agent"

if [[ -f $out ]]; then echo "$out"; exit 0; fi
[[ ${1:-} != --path ]] || die "agent not built for the current inputs: run guest-agent/build-agent.sh"

qjs="$cache/quickjs/$qjs_hash"
if [[ ! -f $qjs/libquickjs.a ]]; then
  say "QuickJS $version: compiling ($qjs_hash)"
  mkdir -p "$work/qjs"
  for src in "${qjs_sources[@]}" qjsc.c; do
    # The vendored sources as they are: their warnings are not ours to fix.
    gcc "${cflags[@]}" "${qjs_defines[@]}" -w -c -o "$work/qjs/${src%.c}.o" "$vendor/$src" &
  done
  wait
  for src in "${qjs_sources[@]}" qjsc.c; do [[ -f $work/qjs/${src%.c}.o ]] || die "QuickJS: $src did not compile"; done
  ar rcs "$work/qjs/libquickjs.a" $(printf "$work/qjs/%s.o " "${qjs_sources[@]%.c}")
  gcc -o "$work/qjs/qjsc" "$work/qjs/qjsc.o" "$work/qjs/libquickjs.a" -lm -ldl -lpthread
  # A private directory, then an atomic rename: concurrent builds cannot mix their files.
  mkdir -p "$qjs.$$"
  cp "$work/qjs/libquickjs.a" "$work/qjs/qjsc" "$qjs.$$/"
  mv -T "$qjs.$$" "$qjs" 2>/dev/null || rm -rf "$qjs.$$"
fi

say "agent: qjsc and gcc -static ($hash)"
"$qjs/qjsc" -e -m -M vmctr,vmctr -N vmctr_agent -o "$work/agent.c" "$work/agent.js"
gcc "${cflags[@]}" -Wall -Wextra -Werror -Wno-unused-parameter -isystem "$vendor" -c -o "$work/vmctr.o" "$module_src"
gcc "${cflags[@]}" -w -I "$vendor" -c -o "$work/agent.o" "$work/agent.c"
# The linker's one warning is about dlopen in quickjs-libc (native modules), which the agent never loads: shown only on failure.
gcc -static -s -Wl,--gc-sections -o "$work/vmctr-agent" "$work/agent.o" "$work/vmctr.o" "$qjs/libquickjs.a" -lm -lpthread 2>"$work/link.log" \
  || { cat "$work/link.log" >&2; die "link failed"; }
mkdir -p "$(dirname "$out")"
cp "$work/vmctr-agent" "$out.$$.tmp"
mv "$out.$$.tmp" "$out"
say "$(stat -c %s "$out") bytes"
echo "$out"
