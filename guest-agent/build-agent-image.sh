#!/usr/bin/env bash
# Builds the read-only agent image every guest boots from (/dev/vda, ext4):
# the agent binary as /init (QuickJS, static: guest-agent/build-agent.sh),
# the static vmctr-exec helper as /vmctr/vmctr-exec, and the empty mount
# points the agent mounts on as PID 1. Nothing else: no shell, no libraries.
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
cache="${VMCTR_CACHE:-$HOME/.cache/vmctr}/agent-image"
die() { echo "build-agent-image: $*" >&2; exit 1; }
say() { echo "[agent-image] $*" >&2; }

helper_src="$here/exec/vmctr-exec.c"
command -v gcc >/dev/null || die "gcc is not installed"
command -v mke2fs >/dev/null || die "mke2fs is not installed: apt-get install e2fsprogs"

# The agent binary's path names its own content hash: the image's key needs no more of it.
if [[ ${1:-} == --path ]]; then
  agent="$("$here/build-agent.sh" --path 2>/dev/null | tail -1)" \
    || die "agent image not built for the current inputs (nor its agent binary): run guest-agent/build-agent-image.sh"
else
  agent="$("$here/build-agent.sh" | tail -1)"
fi

hash="$(
  {
    cat "$self" "$helper_src"
    echo "agent=$agent"
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
mkdir -p "$root"/{dev,proc,sys,run,tmp,vmctr}

install -m 0755 "$agent" "$root/init"
say "vmctr-exec: gcc -static"
gcc -static -O2 -s -Wall -o "$root/vmctr/vmctr-exec" "$helper_src"

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
