#!/usr/bin/env bash
# Builds the nested KVM lab's L1: Debian's kernel (extracted, not installed:
# its initramfs trigger is slow) and a busybox initramfs that loads virtio,
# 9p, overlay and kvm-amd, mounts the host root read-only under a tmpfs
# overlay and starts the lab agent. Idempotent, cached under
# ${VMCTR_CACHE:-~/.cache/vmctr}/lab. Prints key=path lines on stdout.
set -euo pipefail

cache="${VMCTR_CACHE:-$HOME/.cache/vmctr}/lab"
# Loaded in this order, each after the modules it depends on.
modules=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
  netfs fscache 9pnet 9pnet_virtio 9p overlay virtio_console irqbypass ccp kvm kvm-amd)

die() { echo "build-lab: $*" >&2; exit 1; }
stage() { echo "[lab] $*" >&2; }

[[ $# -eq 0 ]] || die "takes no arguments"
for tool in apt-cache apt-get dpkg depmod cpio gzip xz readelf qemu-system-x86_64; do
  command -v "$tool" >/dev/null || die "missing $tool (Debian: apt-get install qemu-system-x86 kmod cpio xz-utils binutils)"
done
busybox=/bin/busybox
dpkg-query -W busybox-static >/dev/null 2>&1 && [[ -x $busybox ]] \
  || die "the initramfs needs a static busybox: apt-get install busybox-static"

pkg="$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')"
[[ -n $pkg ]] || die "cannot resolve the kernel package of linux-image-amd64: run apt-get update"
kver="${pkg#linux-image-}"
dir="$cache/$kver"
root="$dir/root"
kernel="$root/boot/vmlinuz-$kver"
moddir="$root/lib/modules/$kver"

mkdir -p "$dir"
exec 9>"$cache/.lock"
flock 9

if [[ ! -f $dir/.extracted ]]; then
  stage "downloading $pkg"
  rm -rf "$root" "$dir"/*.deb
  (cd "$dir" && apt-get download "$pkg") >"$dir/apt.log" 2>&1 \
    || { tail -n 5 "$dir/apt.log" >&2; die "apt-get download $pkg failed (log: $dir/apt.log)"; }
  stage "extracting $pkg"
  dpkg -x "$dir"/"$pkg"_*.deb "$root"
  # The package ships no modules.dep (its postinst makes it); modprobe in L1 needs it too.
  depmod -b "$root" "$kver"
  rm -f "$dir"/*.deb
  touch "$dir/.extracted"
fi
[[ -f $kernel ]] || die "no kernel at $kernel"

# QEMU boots the uncompressed vmlinux through its PVH entry: under TCG this
# skips the firmware's kernel loading and the xz decompressor, about 5 s.
vmlinux="$dir/vmlinux-$kver"
if [[ ! -f $vmlinux ]]; then
  stage "extracting vmlinux from $(basename "$kernel")"
  for offset in $(LC_ALL=C grep -aboP '\xfd7zXZ\x00' "$kernel" | cut -d: -f1); do
    # xz complains about the bytes after the stream; the stream itself is whole.
    tail -c +$((offset + 1)) "$kernel" | xz -dc >"$vmlinux.tmp" 2>/dev/null || true
    # (no grep -q: under pipefail, readelf cut short by SIGPIPE would fail the test)
    if readelf -n "$vmlinux.tmp" 2>/dev/null | grep 'Xen.*0x00000012' >/dev/null; then
      mv "$vmlinux.tmp" "$vmlinux"
      break
    fi
  done
  rm -f "$vmlinux.tmp"
  [[ -f $vmlinux ]] || die "found no xz-compressed vmlinux with a PVH entry note in $kernel"
fi

# The initramfs is keyed by this script, which holds its /init, and kvm-hold.c.
initrd="$dir/l1-$(cat "${BASH_SOURCE[0]}" "$(dirname "${BASH_SOURCE[0]}")/kvm-hold.c" | sha256sum | cut -c1-12).cpio.gz"
if [[ ! -f $initrd ]]; then
  stage "building $initrd"
  rm -f "$dir"/l1-*.cpio.gz # earlier versions of this script
  stagedir="$(mktemp -d)"
  trap 'rm -rf "$stagedir"' EXIT
  mkdir -p "$stagedir"/{bin,dev,proc,sys,mnt/host,mnt/rw,newroot,modules}
  cp "$busybox" "$stagedir/bin/busybox"
  cc -O2 -Wall -Werror -static -o "$stagedir/bin/kvm-hold" "$(dirname "${BASH_SOURCE[0]}")/kvm-hold.c" \
    || die "cannot build kvm-hold (needs gcc and glibc's static libc: apt-get install build-essential)"

  # Resolve each module's dependencies from modules.dep, depth first, so
  # every module is loaded after what it needs; decompress for busybox insmod.
  declare -A path_of=() loaded=()
  while IFS=: read -r mod deps; do
    name="$(basename "$mod")"; name="${name%%.ko*}"
    path_of[${name//-/_}]="$mod:$deps"
  done <"$moddir/modules.dep"
  order=()
  add() {
    local key="${1//-/_}" entry dep
    [[ -n ${loaded[$key]:-} ]] && return
    entry="${path_of[$key]:-}"
    [[ -n $entry ]] || die "module $1 not found in $moddir/modules.dep"
    for dep in ${entry#*:}; do
      dep="$(basename "$dep")"; add "${dep%%.ko*}"
    done
    loaded[$key]=1
    local src="$moddir/${entry%%:*}" out="$stagedir/modules/$key.ko"
    case "$src" in
      *.ko.xz) xz -dc "$src" >"$out" ;;
      *.ko.zst) zstd -dqc "$src" >"$out" ;;
      *.ko.gz) gzip -dc "$src" >"$out" ;;
      *) cp "$src" "$out" ;;
    esac
    order+=("$key")
  }
  for m in "${modules[@]}"; do add "$m"; done
  printf '%s\n' "${order[@]}" >"$stagedir/modules/order"

  cat >"$stagedir/init" <<'INIT'
#!/bin/busybox sh
# L1 init: host root (9p, read-only) + tmpfs overlay, then the lab agent.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t devtmpfs dev /dev
exec </dev/null >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sys /sys
fail() { echo "lab-init: $*"; poweroff -f; }
# khugepaged asleep: while it collapsed pages of a running nested guest's
# memory, this L1 has hung (a VMM's vCPU thread in a soft lockup inside
# KVM_RUN, khugepaged blocked beside it, for good). Guest memory still gets
# huge pages when it is first touched.
echo 86400000 >/sys/kernel/mm/transparent_hugepage/khugepaged/scan_sleep_millisecs
param() { tr ' ' '\n' </proc/cmdline | sed -n "s/^vmctr\.$1=//p"; }
# The lab's settings (test/lab/lab-settings.ts): THP, compaction, and module
# parameters, which busybox insmod takes only on its own command line.
thp="$(param thp)"; [ -n "$thp" ] && echo "$thp" >/sys/kernel/mm/transparent_hugepage/enabled
defrag="$(param thp_defrag)"; [ -n "$defrag" ] && echo "$defrag" >/sys/kernel/mm/transparent_hugepage/defrag
compaction="$(param compaction)"; [ -n "$compaction" ] && echo "$compaction" >/proc/sys/vm/compaction_proactiveness

for m in $(cat /modules/order); do
  args="$(param "mod_$m" | tr , ' ')"
  [ -n "$args" ] && echo "lab-settings: insmod $m $args"
  insmod "/modules/$m.ko" $args || fail "insmod $m $args failed"
done
# A VM held open so pods never flip L1's static keys (kvm-hold.c says why).
[ "$(param hold_vm)" = 1 ] && { kvm-hold & }
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /mnt/host \
  || fail "cannot mount the host root (qemu -virtfs ... mount_tag=hostroot)"
mount -t tmpfs -o mode=755 rw /mnt/rw
mkdir -p /mnt/rw/upper /mnt/rw/work
mount -t overlay -o lowerdir=/mnt/host,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work overlay /newroot \
  || fail "cannot mount the overlay root"

r=/newroot
mount -t proc proc $r/proc
mount -t sysfs sys $r/sys
mount -t cgroup2 cgroup2 $r/sys/fs/cgroup
mount -t devtmpfs dev $r/dev
mkdir -p $r/dev/pts $r/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts $r/dev/pts
ln -sf pts/ptmx $r/dev/ptmx
# What udev would add: bash's process substitution needs /dev/fd.
ln -sf /proc/self/fd $r/dev/fd
ln -sf /proc/self/fd/0 $r/dev/stdin
ln -sf /proc/self/fd/1 $r/dev/stdout
ln -sf /proc/self/fd/2 $r/dev/stderr
mount -t tmpfs -o mode=1777 shm $r/dev/shm
# /tmp stays the host's (under the writable overlay): a checkout or test
# files under /tmp, as CI's clone may be, are the same inside the lab.
mount -t tmpfs -o mode=755 run $r/run
# This kernel's modules, so modprobe (tun, bridge, vhost...) works inside.
modules="$(param modules)"
if [ -n "$modules" ]; then
  mkdir -p "$r/lib/modules/$(uname -r)"
  mount --bind "$r$modules" "$r/lib/modules/$(uname -r)"
fi
hostname vmctr-lab

node="$(param node)"
agent="$(param agent)"
[ -n "$node" ] && [ -n "$agent" ] || fail "kernel command line lacks vmctr.node= and vmctr.agent="
chroot $r "$node" "$agent"
echo "lab-init: agent exited with status $?"
poweroff -f
INIT
  chmod +x "$stagedir/init"
  (cd "$stagedir" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -6) >"$initrd.tmp"
  mv "$initrd.tmp" "$initrd"
fi

echo "kernel=$vmlinux"
echo "systemmap=$root/boot/System.map-$kver"
echo "initrd=$initrd"
echo "modules=$moddir"
