import test, { type ExecutionContext } from 'ava';
import { guestHostForTests } from '../guest-host.js';
import { repoRoot } from '../lab/exec.js';

// End to end: host directories in pods over virtio-fs (one virtiofsd per
// pod, pod/volume-backend.ts). Files cross both ways while pods run, a
// read-only volume refuses writes, two pods share one volume, a big file
// round-trips intact, a backend killed ends its pod with one line, bad
// specs are one-line errors before any VM starts, and nothing is left.

const { guest, serial } = guestHostForTests(test);

const vmctr = `${repoRoot}/bin/vmctr`;
const TIMEOUT = 420_000;
let states = 0;

/** Runs a shell script where pods run; each test has its own vmctr state directory and a scratch directory $d outside the 9p share. */
function sh(script: string) {
  const root = `/tmp/vmctr-e2e-vol-${process.pid}-${states++}`;
  return guest().exec(['sh', '-c', `set -u\nexport VMCTR_ROOT=${root}\nvmctr=${vmctr}\nmkdir -p /run/vmctr-e2e\nd=$(mktemp -d /run/vmctr-e2e/vol-XXXXXX)\n${script}`], { cwd: repoRoot, timeoutMs: TIMEOUT });
}

/** What a test leaves on the host: pod directories, monitors, virtiofsd processes, mounts, cgroups. */
const LEFTOVERS = `
  echo "dirs=$(ls -A "$VMCTR_ROOT/pods" 2>/dev/null | grep -v '^.staging$' | wc -l)"
  echo "processes=$(pgrep -f "$VMCTR_ROOT/pods/" | wc -l)"
  echo "virtiofsd=$(pgrep -f "source=$VMCTR_ROOT/pods/" | wc -l)"
  echo "mounts=$(grep -c "$VMCTR_ROOT" /proc/self/mountinfo)"
  echo "cgroups=$(find /sys/fs/cgroup/vmctr -mindepth 1 -maxdepth 1 -type d 2>/dev/null | wc -l)"
`;

function nothingLeft(t: ExecutionContext, out: string): void {
  for (const what of ['dirs', 'processes', 'virtiofsd', 'mounts', 'cgroups']) t.is(field(out, what), '0', `${what} left on the host`);
}

function field(out: string, name: string): string | undefined {
  return new RegExp(`^${name}=(.*)$`, 'm').exec(out)?.[1];
}

serial('a host directory in a pod: files both ways, the container\'s owner on the host, read-only refused, rkt\'s syntax and an empty volume shared by two apps', async (t) => {
  t.log(guest().description);
  const r = await sh(`
    mkdir "$d/src"; chmod 1777 "$d/src"; echo from-host >"$d/src/in"
    $vmctr run --rm -v "$d/src:/data" -u 1000:1001 default -- sh -c 'cat /data/in; echo from-pod >/data/out; mkdir /data/dir; ls -ln /data/in | cut -c1-10'
    echo "run=$?"
    echo "out=$(cat "$d/src/out") owner=$(stat -c %u:%g "$d/src/out") dir=$(stat -c %u:%g "$d/src/dir")"
    $vmctr run --rm -v "$d/src:/ro:ro" default -- sh -c 'cat /ro/in; echo x >/ro/x; echo "write=$?"; rm /ro/in; echo "rm=$?"' 2>"$d/roerr"
    cat "$d/roerr"
    echo "still=$(cat "$d/src/in") nox=$(test -e "$d/src/x" && echo yes || echo no)"
    $vmctr run --rm --volume work,kind=host,source="$d/src" --volume scratch,kind=empty \\
      --mount volume=work,target=/w --mount volume=scratch,target=/s default -- sh -c 'echo first >/s/note; cat /w/in; sleep 2' \\
      --- --mount volume=scratch,target=/t default -- sh -c 'for i in $(seq 1 50); do [ -s /t/note ] && break; sleep 0.1; done; echo "second saw $(cat /t/note)"'
    echo "rkt=$?"
    ${LEFTOVERS}
  `);
  const out = r.stdout.toString();
  t.log(out, r.stderr.toString().slice(-3000));
  t.regex(out, /^from-host\n/m);
  t.is(field(out, 'run'), '0');
  t.is(field(out, 'out'), 'from-pod owner=1000:1001 dir=1000:1001', 'files made in the pod are the container user\'s on the host');
  t.regex(out, /Read-only file system/);
  t.is(field(out, 'write'), '1');
  t.is(field(out, 'rm'), '1');
  t.is(field(out, 'still'), 'from-host nox=no');
  t.regex(out, /^second saw first$/m, 'two apps share an empty volume');
  t.is(field(out, 'rkt'), '0');
  nothingLeft(t, out);
});

serial('while pods run: host writes appear in the pod, two pods share a volume, a 1 GiB file reaches the pod intact and one the pod writes the host; stop keeps what was written', async (t) => {
  t.log(guest().description);
  // The lab writes every file to tmpfs, whose pages count against the memory limit of the pod whose virtiofsd
  // wrote them (and cannot be reclaimed): the 1 GiB file is the host's, read by the pod; what the pod writes is smaller.
  const r = await sh(`
    mkdir "$d/src"
    a=$($vmctr run -d --name a -v "$d/src:/data" default -- sleep 1000)
    b=$($vmctr run -d --name b -v "$d/src:/shared" default -- sleep 1000)
    # The lab keeps every file in tmpfs, so what b's virtiofsd writes counts against b's host limit: raise that (guest RAM stays 256 MiB).
    $vmctr update --memory 1024 b >/dev/null
    echo late >"$d/src/late"
    echo "pod-reads=$($vmctr exec a -- cat /data/late)"
    $vmctr exec a -- sh -c 'echo from-a >/data/a'
    echo "b-reads=$($vmctr exec b -- cat /shared/a)"
    echo "host=$(node ${repoRoot}/dist/test/e2e/numbered-file.js "$d/src/big" 1024) size=$(stat -c %s "$d/src/big")"
    start=$(date +%s)
    echo "read=$($vmctr exec b -- md5sum /shared/big | cut -d' ' -f1) took=$(( $(date +%s) - start ))"
    start=$(date +%s)
    echo "written=$($vmctr exec b -- sh -c 'dd if=/shared/big of=/shared/copy bs=1M count=64 2>/dev/null && md5sum /shared/copy' | cut -d' ' -f1) took=$(( $(date +%s) - start ))"
    echo "host-copy=$(md5sum "$d/src/copy" | cut -d' ' -f1) head=$(head -c 67108864 "$d/src/big" | md5sum | cut -d' ' -f1)"
    rm "$d/src/big"
    $vmctr exec a -- sh -c 'echo last >/data/last'
    $vmctr stop a >/dev/null; $vmctr stop b >/dev/null
    echo "after-stop=$(cat "$d/src/last")"
    $vmctr rm a b >/dev/null; echo "rm=$?"
    echo "kept=$(ls "$d/src" | tr '\\n' ' ')"
    ${LEFTOVERS}
  `);
  const out = r.stdout.toString();
  t.log(out, r.stderr.toString().slice(-3000));
  t.is(field(out, 'pod-reads'), 'late');
  t.is(field(out, 'b-reads'), 'from-a');
  t.regex(out, /^read=[0-9a-f]{32} took=\d+$/m);
  t.is(/^host=\w+ size=(\d+)$/m.exec(out)?.[1], '1073741824');
  t.is(/^read=(\w+)/m.exec(out)?.[1], /^host=(\w+)/m.exec(out)?.[1], 'the pod read the 1 GiB file as the host wrote it');
  const written = /^written=(\w+) took=\d+$/m.exec(out)?.[1];
  t.regex(written ?? '', /^[0-9a-f]{32}$/);
  t.is(`${written} head=${written}`, field(out, 'host-copy') ?? '', 'the host has the 64 MiB file as the pod wrote it');
  t.is(field(out, 'after-stop'), 'last');
  t.is(field(out, 'rm'), '0');
  t.is(field(out, 'kept'), 'a copy last late ', 'removing the pods leaves the host directory as they left it');
  nothingLeft(t, out);
});

serial('a backend killed mid-run ends the pod with one line; bad specs are one-line errors before any VM starts', async (t) => {
  t.log(guest().description);
  const r = await sh(`
    mkdir "$d/src"; echo x >"$d/file"
    $vmctr run -d --name k -v "$d/src:/data" default -- sleep 1000 >/dev/null
    pkill -KILL -f "source=$VMCTR_ROOT/pods/k/volumes"; echo "pkill=$?"
    for i in $(seq 1 100); do $vmctr status k | grep -q '"state": "failed"' && break; sleep 0.2; done
    $vmctr status k | node -e 'const r = JSON.parse(require("fs").readFileSync(0, "utf8")); console.log(\`state=\${r.state} \${r.exitCode}\\nerror=\${r.error}\`)'
    $vmctr rm k >/dev/null; echo "rm=$?"
    # A monitor killed with SIGKILL: its virtiofsd goes with the VM's socket, and gc leaves the host directory as it was.
    $vmctr run -d --name m -v "$d/src:/data" default -- sh -c 'echo kept >/data/m; sleep 1000' >/dev/null
    for i in $(seq 1 50); do [ -s "$d/src/m" ] && break; sleep 0.2; done
    kill -KILL $($vmctr status m | node -e 'console.log(JSON.parse(require("fs").readFileSync(0, "utf8")).monitor.pid)')
    for i in $(seq 1 50); do pgrep -f "source=$VMCTR_ROOT/pods/m/volumes" >/dev/null || break; sleep 0.2; done
    echo "gc=$($vmctr gc | tr '\\n' ' ')after-kill=$(cat "$d/src/m") $(ls -A "$d/src" | wc -l)"
    # Pages virtiofsd writes are the pod's: on tmpfs ($d is) they cannot be reclaimed, and past the limit the OOM killer ends the pod.
    mkdir "$d/tmpfs"
    $vmctr run --name oom --memory 64 -v "$d/tmpfs:/d" default -- dd if=/dev/zero of=/d/f bs=1M count=400 2>"$d/err" >/dev/null; echo "oom=$? $(tail -1 "$d/err")"
    echo "oom-ps=$($vmctr ps -a | grep -c 'dead (the out-of-memory killer ended its monitor')"
    $vmctr rm oom >/dev/null; echo "oom-rm=$?"
    rm -f "$d/tmpfs/f"
    $vmctr run --rm --memory 64 -v "$d/tmpfs:/d" default -- dd if=/dev/zero of=/d/f bs=1M count=400 2>/dev/null >/dev/null; echo "oom-run-rm=$? left=$(ls -A "$VMCTR_ROOT/pods" | grep -vc '^.staging$')"
    for spec in "-v $d/missing:/data" "-v $d/src:data" "--volume v,kind=host,source=$d/src --volume v,kind=empty" "-v $d/file:/data"; do
      $vmctr run --rm $spec default -- true 2>"$d/err"; echo "bad=$? $(wc -l <"$d/err") $(cat "$d/err")"
    done
    $vmctr run --rm -v "$d/src:/etc/passwd" default -- true 2>"$d/err"; echo "over-file=$? $(wc -l <"$d/err") $(cat "$d/err")"
    ${LEFTOVERS}
  `);
  const out = r.stdout.toString();
  t.log(out, r.stderr.toString().slice(-3000));
  t.is(field(out, 'pkill'), '0');
  t.is(field(out, 'state'), 'failed 251');
  t.is(field(out, 'error'), 'the volume backend (virtiofsd) was killed by SIGKILL');
  t.is(field(out, 'rm'), '0');
  t.is(field(out, 'gc'), 'm after-kill=kept 1', 'gc removed the pod; the host directory keeps what the pod wrote');
  t.is(field(out, 'oom'), '251 vmctr: the out-of-memory killer ended its monitor: the pod reached its memory limit (vmctr update --memory)');
  t.is(field(out, 'oom-ps'), '1');
  t.is(field(out, 'oom-rm'), '0');
  t.is(field(out, 'oom-run-rm'), '251 left=0', 'run --rm removes what a monitor the OOM killer ended left of the pod');
  const bad = out.split('\n').filter((l) => l.startsWith('bad='));
  t.is(bad.length, 4);
  for (const line of bad) t.regex(line, /^bad=125 1 vmctr: /);
  t.regex(bad[0]!, /missing/);
  t.regex(bad[1]!, /absolute/);
  t.regex(bad[2]!, /"v"/);
  t.regex(bad[3]!, /not a directory/);
  t.regex(field(out, 'over-file') ?? '', /^125 1 vmctr: .*\/etc\/passwd.*not a directory/);
  nothingLeft(t, out);
});

serial('the container\'s writes go to the pod\'s writable layer on the host\'s disk: 300 MB to / in a 256 MiB pod; a full layer is ENOSPC and the pod goes on', async (t) => {
  t.log(guest().description);
  const r = await sh(`
    $vmctr run -d --name big default -- sleep 1000 >/dev/null
    echo "layer=$(stat -c %s "$VMCTR_ROOT/pods/big/layer.ext4")"
    # The lab keeps every file in tmpfs, so the layer's pages count against the pod's host limit: raise that (guest RAM stays 256 MiB).
    $vmctr update --memory 1024 big >/dev/null
    $vmctr exec big -- sh -c 'dd if=/dev/zero of=/big bs=1M count=300 2>&1 | tail -1; sync; ls -l /big | cut -c1-60'
    echo "used=$(( $(du -k "$VMCTR_ROOT/pods/big/layer.ext4" | cut -f1) / 1024 ))"
    $vmctr rm -f big >/dev/null
    $vmctr run --rm --storage-size 32M default -- sh -c 'dd if=/dev/zero of=/fill bs=1M count=64 2>&1 | grep -o "No space left on device" | head -1; rm /fill; echo after >/after && cat /after'
    echo "full=$?"
    $vmctr run --rm --storage-size 1K default -- true 2>&1; echo "small=$?"
    ${LEFTOVERS}
  `);
  const out = r.stdout.toString();
  t.log(out, r.stderr.toString().slice(-3000));
  t.is(field(out, 'layer'), String(10 * 2 ** 30), 'a 10 GiB sparse layer by default');
  t.regex(out, /^300\+0 records out\n-rw-r--r-- +1 root +root +314572800 /m, 'all 300 MB written in a pod of 256 MiB');
  t.true(Number(field(out, 'used')) >= 300, 'the bytes are in the layer on the host');
  t.regex(out, /^No space left on device\nafter\nfull=0$/m, 'a full layer is ENOSPC; the pod goes on');
  t.regex(out, /^vmctr: --storage-size: expected a size such as 512M, 10G or 1T \(from 16M to 16T\), got "1K"\nsmall=125$/m);
  nothingLeft(t, out);
});

serial('--rootfs fs: the default image, a directory and a tar served over virtio-fs, nothing built; writes on the layer disk, the source unchanged; volumes beside it', async (t) => {
  t.log(guest().description);
  const r = await sh(`
    $vmctr run --rm --rootfs fs default -- sh -c 'head -1 /etc/os-release; echo w >/new && cat /new; id -un; stat -c "home=%u" /home/vmctr'
    echo "default=$?"
    img="$d/img"; mkdir -p "$img/bin" "$img/tmp" "$img/proc" "$img/sys" "$img/dev" "$img/etc"; cp /bin/busybox "$img/bin/"; ln -s busybox "$img/bin/sh"
    echo 'root:x:0:0:root:/:/bin/sh' >"$img/etc/passwd"; echo image >"$img/etc/motd"
    $vmctr run --rm --rootfs fs -v "$d:/host" "$img" /bin/sh -c 'busybox cat /etc/motd; echo changed >/etc/motd; busybox rm /bin/sh; echo new >/made; busybox cat /etc/motd /made; busybox ls /host | busybox grep -c img; busybox dd if=/dev/zero of=/big bs=1M count=32 2>&1 | busybox tail -1'
    echo "dir=$? motd=$(cat "$img/etc/motd") sh=$(test -L "$img/bin/sh" && echo kept) made=$(test -e "$img/made" && echo yes || echo no)"
    tar -C "$img" -cf "$d/img.tar" .
    $vmctr run --rm --rootfs fs "$d/img.tar" /bin/sh -c 'busybox cat /etc/motd'
    echo "tar=$?"
    $vmctr run --rm --rootfs fs "$d/no-such-dir" /bin/true 2>&1; echo "missing=$?"
    ${LEFTOVERS}
  `);
  const out = r.stdout.toString();
  t.log(out, r.stderr.toString().slice(-3000));
  t.regex(out, /^NAME="vmctr default image"\nw\nroot\nhome=1000\ndefault=0$/m, 'the default image over virtio-fs, owners kept');
  t.regex(out, /^image\nchanged\nnew\n1\n32\+0 records out/m, 'a directory image: writes and removals on the layer, volumes beside it');
  t.is(field(out, 'dir'), '0 motd=image sh=kept made=no', 'the source directory is unchanged');
  t.regex(out, /^image\ntar=0$/m, 'a tar unpacked for the pod');
  t.regex(out, /^vmctr: rootfs source \/.*\/no-such-dir does not exist\nmissing=125$/m);
  nothingLeft(t, out);
});
