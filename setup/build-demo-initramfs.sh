#!/usr/bin/env bash
# Builds the demo guest's initramfs: busybox-static and an /init that says
# userspace is up, runs $vmctr_exec if the kernel command line set it, then
# reboots (which ends the VM). Cached by the hash of this script and the
# busybox version; the path is the last line on stdout.
#
#   build-demo-initramfs.sh          build if needed, print the path
#   build-demo-initramfs.sh --path   print the cached path, or fail if not built
set -euo pipefail

self="$(readlink -f "${BASH_SOURCE[0]}")"
cache="${VMCTR_CACHE:-$HOME/.cache/vmctr}/demo-initramfs"
die() { echo "build-demo-initramfs: $*" >&2; exit 1; }

version="$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null)" || die "busybox-static is not installed: apt-get install busybox-static"
hash="$( { cat "$self"; echo "busybox-static=$version"; } | sha256sum | cut -c1-16)"
out="$cache/$hash/initramfs.cpio.gz"

if [[ -f $out ]]; then echo "$out"; exit 0; fi
[[ ${1:-} != --path ]] || die "demo initramfs not built: run setup/build-demo-initramfs.sh"

echo "[initramfs] building the demo guest initramfs" >&2
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,etc}
cp /bin/busybox "$root/bin/busybox"
for applet in sh mount echo cat nproc uname reboot poweroff sleep grep head ls dd; do
  ln -s busybox "$root/bin/$applet"
done
cat >"$root/init" <<'INIT'
#!/bin/sh
# Kernel parameters of the form key=value that the kernel does not know
# arrive here as environment variables: vmctr_exec, vmctr_end.
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo "vmctr demo guest: userspace is up on $(nproc) CPUs, kernel $(uname -r)"
[ -n "$vmctr_exec" ] && sh -c "$vmctr_exec"
case "$vmctr_end" in
  exit) exit 1 ;;           # PID 1 dies: the kernel panics
  poweroff) poweroff -f ;;  # also ends the VM (no ACPI: the VMM sees the kernel halt)
  shell) exec sh ;;         # interactive console
  *) reboot -f ;;           # ends the VM cleanly
esac
INIT
chmod +x "$root/init"
mkdir -p "$(dirname "$out")"
(cd "$root" && find . -print0 | cpio --null -o -H newc --owner=0:0 --quiet) | gzip -9 >"$out.tmp"
mv "$out.tmp" "$out"
echo "[initramfs] $(stat -c %s "$out") bytes" >&2
echo "$out"
