import test from 'ava';
import { describeMount, planRootfs } from '../../guest-agent/rootfs.js';

test('a block device is mounted read-only under a tmpfs overlay, then proc, sys, dev, dev/pts and a fresh /tmp', (t) => {
  const { root, steps } = planRootfs({ device: '/dev/vdb', fstype: 'ext4' }, '/run/vmctr/1');
  t.is(root, '/run/vmctr/1/root');
  t.deepEqual(
    steps.map((s) => describeMount(s.mount)),
    [
      'mount -t ext4 -o ro /dev/vdb /run/vmctr/1/lower',
      'mount -t tmpfs -o mode=0755 tmpfs /run/vmctr/1/scratch',
      'mount -t overlay -o lowerdir=/run/vmctr/1/lower,upperdir=/run/vmctr/1/scratch/upper,workdir=/run/vmctr/1/scratch/work overlay /run/vmctr/1/root',
      'mount -o bind /proc /run/vmctr/1/root/proc',
      'mount -o bind /sys /run/vmctr/1/root/sys',
      'mount -o bind /dev /run/vmctr/1/root/dev',
      'mount -o bind /dev/pts /run/vmctr/1/root/dev/pts',
      'mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /run/vmctr/1/root/tmp',
    ],
  );
  t.true(steps.every((s) => s.mkdir.at(-1) === s.target), 'each mount point is created first');
});

test('a directory is the lower layer as it is: no mount of its own', (t) => {
  const { steps } = planRootfs({ directory: '/srv/rootfs' }, '/run/vmctr/2');
  t.is(steps.length, 7);
  t.regex(steps[1]!.mount.data, /lowerdir=\/srv\/rootfs,/);
});

test('volumes: the pod\'s virtio-fs device in the state directory, each volume bound onto its target, shallower first, read-only ones remounted', (t) => {
  const { steps } = planRootfs({ device: '/dev/vdb', fstype: 'ext4' }, '/run/vmctr/3', [
    { name: 'cache', target: '/data/cache', readOnly: false },
    { name: 'data', target: '/data', readOnly: true },
  ]);
  t.is(describeMount(steps[0]!.mount), 'mount -t virtiofs vmctr-volumes /run/vmctr/3/volumes');
  t.deepEqual(
    steps.slice(9).map((s) => describeMount(s.mount)),
    [
      'mount -o bind /run/vmctr/3/volumes/data /run/vmctr/3/root/data',
      'mount -o remount,ro,bind /run/vmctr/3/root/data',
      'mount -o bind /run/vmctr/3/volumes/cache /run/vmctr/3/root/data/cache',
    ],
  );
  t.deepEqual(steps[10]!.mkdir, [], 'a remount creates nothing');
});

test('no volumes: no virtio-fs mount', (t) => {
  const { steps } = planRootfs({ device: '/dev/vdb', fstype: 'ext4' }, '/run/vmctr/4', []);
  t.false(steps.some((s) => s.mount.fstype === 'virtiofs'));
});

test('with the pod\'s writable layer disk: the upper layer is the app\'s own directory on it, not a tmpfs', (t) => {
  const { steps } = planRootfs({ device: '/dev/vdb', fstype: 'ext4', layer: { device: '/dev/vdd', fstype: 'ext4', directory: '0' } }, '/run/vmctr/5');
  t.deepEqual(
    steps.slice(0, 3).map((s) => describeMount(s.mount)),
    [
      'mount -t ext4 -o ro /dev/vdb /run/vmctr/5/lower',
      'mount -t ext4 /dev/vdd /run/vmctr/5/scratch',
      'mount -t overlay -o lowerdir=/run/vmctr/5/lower,upperdir=/run/vmctr/5/scratch/0/upper,workdir=/run/vmctr/5/scratch/0/work overlay /run/vmctr/5/root',
    ],
  );
  t.deepEqual(steps[2]!.mkdir, ['/run/vmctr/5/scratch/0/upper', '/run/vmctr/5/scratch/0/work', '/run/vmctr/5/root']);
});

test('an image on the pod\'s virtio-fs device: the device is mounted first, its directory the lower layer, the upper on the layer disk', (t) => {
  const { steps } = planRootfs({ share: '_rootfs-0', layer: { device: '/dev/vdb', fstype: 'ext4', directory: '0' } }, '/run/vmctr/6', [
    { name: 'data', target: '/data', readOnly: false },
  ]);
  const calls = steps.map((s) => describeMount(s.mount));
  t.deepEqual(calls.slice(0, 3), [
    'mount -t virtiofs vmctr-volumes /run/vmctr/6/volumes',
    'mount -t ext4 /dev/vdb /run/vmctr/6/scratch',
    'mount -t overlay -o lowerdir=/run/vmctr/6/volumes/_rootfs-0,upperdir=/run/vmctr/6/scratch/0/upper,workdir=/run/vmctr/6/scratch/0/work overlay /run/vmctr/6/root',
  ]);
  t.is(calls.filter((c) => c.includes('virtiofs')).length, 1, 'the device is mounted once, for the image and the volumes');
  t.is(calls.at(-1), 'mount -o bind /run/vmctr/6/volumes/data /run/vmctr/6/root/data');
});
