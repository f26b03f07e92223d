#!/usr/bin/env bash
# Builds the microVM guest kernel: Debian's linux-source-6.1, `make tinyconfig`
# plus vmctr.config, as a PVH-bootable vmlinux. Cached by the hash of the
# fragment and the source package version, so an unchanged fragment costs
# nothing. Stages go to stderr; the vmlinux path is the last line on stdout.
#
#   build-kernel.sh          build if needed, print the path
#   build-kernel.sh --path   print the cached path, or fail if not built
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
fragment="$here/vmctr.config"
source_pkg=linux-source-6.1
tarball=/usr/src/$source_pkg.tar.xz
cache="${VMCTR_CACHE:-$HOME/.cache/vmctr}/kernel"

die() { echo "build-kernel: $*" >&2; exit 1; }
stage() { echo "[kernel] $*" >&2; }

mode=build
case "${1:-}" in
  '') ;;
  --path) mode=path ;;
  *) die "unknown argument '$1' (usage: build-kernel.sh [--path])" ;;
esac
[[ $# -le 1 ]] || die "too many arguments (usage: build-kernel.sh [--path])"

[[ -f $fragment ]] || die "missing config fragment $fragment"
version="$(dpkg-query -W -f='${Version}' "$source_pkg" 2>/dev/null)" \
  || die "$source_pkg is not installed: apt-get install $source_pkg"
hash="$( { cat "$fragment"; printf '%s\n' "$source_pkg=$version"; } | sha256sum | cut -c1-16)"
out="$cache/$hash"
vmlinux="$out/vmlinux"

if [[ -f $vmlinux ]]; then
  echo "$vmlinux"
  exit 0
fi
[[ $mode == build ]] || die "kernel not built for this fragment (hash $hash): run kernel-config/build-kernel.sh"

[[ -f $tarball ]] || die "missing $tarball: apt-get install $source_pkg"
mkdir -p "$cache"
# One build at a time: a second caller waits, then finds the result cached.
exec 9>"$cache/.lock"
flock 9
if [[ -f $vmlinux ]]; then
  echo "$vmlinux"
  exit 0
fi

start=$SECONDS
src="$cache/src/$source_pkg-$version"
if [[ ! -f $src/.extracted ]]; then
  stage "extracting $tarball (about a minute)"
  rm -rf "$src"
  mkdir -p "$src"
  tar -xJf "$tarball" -C "$src" --strip-components=1
  touch "$src/.extracted"
fi

# Out-of-tree build dir shared by all fragments: a changed fragment rebuilds
# only what the config change touches.
build="$cache/build"
mkdir -p "$build"
log="$build/make.log"
mk() { make -C "$src" O="$build" ARCH=x86_64 "$@"; }

stage "make tinyconfig + $(basename "$fragment")"
{
  mk tinyconfig
  KCONFIG_CONFIG="$build/.config" "$src/scripts/kconfig/merge_config.sh" -m -O "$build" "$build/.config" "$fragment"
  mk olddefconfig
} >"$log" 2>&1 || { tail -n 30 "$log" >&2; die "configuration failed (full log: $log)"; }

# merge_config only warns when Kconfig drops an option (unmet dependency):
# insist that every value the fragment asks for is in the final config.
missing=()
while IFS= read -r line; do
  grep -qxF -- "$line" "$build/.config" || missing+=("${line%%=*}")
done < <(grep -E '^CONFIG_[A-Za-z0-9_]+=' "$fragment")
((${#missing[@]} == 0)) || die "options of the fragment not set in the final config (unmet dependencies?): ${missing[*]}"
# ...and that what it turns off (PCI, ACPI, modules...) was not selected back on.
unwanted=()
for option in $(sed -n 's/^# \(CONFIG_[A-Za-z0-9_]*\) is not set$/\1/p' "$fragment"); do
  grep -qE "^$option=[ym]" "$build/.config" && unwanted+=("$option")
done
((${#unwanted[@]} == 0)) || die "options the fragment turns off are on in the final config (selected by another option?): ${unwanted[*]}"

stage "make -j$(nproc) vmlinux (log: $log)"
mk -j"$(nproc)" vmlinux >>"$log" 2>&1 &
make_pid=$!
# Condensed progress: a running line count instead of the whole make output.
while kill -0 "$make_pid" 2>/dev/null; do
  sleep 10
  stage "  ... $(wc -l <"$log") log lines, $((SECONDS - start)) s"
done
wait "$make_pid" || { tail -n 40 "$log" >&2; die "make vmlinux failed (full log: $log)"; }

readelf -n "$build/vmlinux" | grep 'Xen.*0x00000012' >/dev/null \
  || die "built vmlinux has no Xen PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY): is CONFIG_PVH set?"

mkdir -p "$out"
cp "$build/.config" "$out/config"
cp "$build/vmlinux" "$out/vmlinux.tmp"
seconds=$((SECONDS - start))
size=$(stat -c %s "$out/vmlinux.tmp")
cat >"$out/build-info.json" <<EOF
{
  "sizeBytes": $size,
  "buildSeconds": $seconds,
  "sourcePackage": "$source_pkg",
  "sourceVersion": "$version",
  "hash": "$hash"
}
EOF
mv "$out/vmlinux.tmp" "$vmlinux"
stage "built in ${seconds} s, $size bytes"
echo "$vmlinux"
