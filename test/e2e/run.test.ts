import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { guestHostForTests } from '../guest-host.js';
import { repoRoot } from '../lab/exec.js';

// End to end: `vmctr run` starts a pod (its own microVM with the guest agent)
// on real KVM: this host's, or the nested lab's when this host has none.

const { guest, serial } = guestHostForTests(test);

const vmctr = `${repoRoot}/bin/vmctr`;
const TIMEOUT = 300_000;
let states = 0;

/** Runs a shell script where pods run; each test gets its own vmctr state directory. */
function sh(script: string, input?: string) {
  const root = `/tmp/vmctr-e2e-run-${process.pid}-${states++}`;
  return guest().exec(['sh', '-c', `set -u\nexport VMCTR_ROOT=${root}\nvmctr=${vmctr}\n${script}`], {
    cwd: repoRoot,
    timeoutMs: TIMEOUT,
    ...(input === undefined ? {} : { input }),
  });
}

function run(args: string[], input?: string) {
  return guest().exec([vmctr, 'run', ...args], { cwd: repoRoot, timeoutMs: TIMEOUT, env: { VMCTR_ROOT: `/tmp/vmctr-e2e-run-${process.pid}-${states++}` }, ...(input === undefined ? {} : { input }) });
}

serial('vmctr run default -- echo hello prints hello and exits 0', async (t) => {
  t.log(guest().description);
  const r = await run(['--rm', 'default', '--', 'echo', 'hello']);
  t.is(r.stdout.toString(), 'hello\n');
  t.is(r.stderr.toString(), '');
  t.is(r.code, 0);
});

serial('the container exit code is the command exit code: 3, and 137 for a SIGKILL inside', async (t) => {
  t.log(guest().description);
  const r = await sh(`
    $vmctr run --rm default -- sh -c 'exit 3'; echo "exit=$?"
    $vmctr run --rm default -- sh -c 'kill -KILL $$'; echo "killed=$?"
    $vmctr run --rm default -- no-such-command; echo "missing=$?"
  `);
  t.regex(r.stdout.toString(), /exit=3\n/);
  t.regex(r.stdout.toString(), /killed=137\n/);
  t.regex(r.stdout.toString(), /missing=127\n/);
});

serial('stdout and stderr stay apart and complete for 10 MiB each', async (t) => {
  t.log(guest().description);
  const r = await sh(`
    d=$(mktemp -d)
    $vmctr run --rm default -- sh -c 'yes 0123456789abcdef | head -c 10485760; yes stderr-line | head -c 10485760 >&2' >"$d/out" 2>"$d/err"
    echo "exit=$?"
    echo "out=$(wc -c <"$d/out") $(sha256sum <"$d/out" | cut -c1-16)"
    echo "err=$(wc -c <"$d/err") $(sha256sum <"$d/err" | cut -c1-16)"
    echo "wantout=10485760 $(yes 0123456789abcdef | head -c 10485760 | sha256sum | cut -c1-16)"
    echo "wanterr=10485760 $(yes stderr-line | head -c 10485760 | sha256sum | cut -c1-16)"
  `);
  const out = r.stdout.toString();
  t.regex(out, /exit=0\n/);
  t.is(/out=(.*)/.exec(out)?.[1], /wantout=(.*)/.exec(out)?.[1]);
  t.is(/err=(.*)/.exec(out)?.[1], /wanterr=(.*)/.exec(out)?.[1]);
});

serial('-i passes stdin through to the container', async (t) => {
  t.log(guest().description);
  const input = Array.from({ length: 20000 }, (_, i) => `line ${i}\n`).join('');
  const r = await run(['--rm', '-i', 'default', '--', 'sh', '-c', 'wc -l; echo done'], input);
  t.is(r.stdout.toString().replace(/\s+/g, ' ').trim(), '20000 done');
  t.is(r.code, 0);
});

serial('-e, -w and -u set the environment, working directory and user (by name, from the image)', async (t) => {
  t.log(guest().description);
  const r = await run(['--rm', '-e', 'GREETING=hi there', '-w', '/tmp/work', '-u', 'vmctr', '--hostname', 'podhost', 'default', '--',
    'sh', '-c', 'echo "$GREETING|$(pwd)|$(id -un):$(id -gn)|$(id -u)|$(hostname)|$HOME"']);
  t.is(r.stdout.toString(), 'hi there|/tmp/work|vmctr:vmctr|1000|podhost|/home/vmctr\n');
  t.is(r.code, 0);
});

serial('-t gives the container a terminal', async (t) => {
  t.log(guest().description);
  const r = await run(['--rm', '-t', 'default', '--', 'sh', '-c', 'tty; stty size']);
  t.regex(r.stdout.toString(), /^\/dev\/pts\/\d+\r\n24 80\r\n$/);
  t.is(r.code, 0);
});

serial('a container that writes to its root filesystem does not change the source directory or tar', async (t) => {
  t.log(guest().description);
  // The source lives where both this process and the pod see it (the lab shares the host's /tmp).
  const src = mkdtempSync(join(tmpdir(), 'vmctr-e2e-rootfs-'));
  writeFileSync(join(src, 'marker'), 'original\n');
  const r = await sh(`
    src=${src}
    mkdir -p "$src/root/bin" "$src/root/etc" && cp /bin/busybox "$src/root/bin/" && ln -s busybox "$src/root/bin/sh"
    cp "$src/marker" "$src/root/etc/marker"
    tar -C "$src/root" -cf "$src/root.tar" .
    before=$(cd "$src/root" && find . | sort | sha256sum)
    for source in "$src/root" "$src/root.tar"; do
      $vmctr run --rm "$source" -- /bin/busybox sh -c 'echo changed >/etc/marker; /bin/busybox rm /bin/sh; /bin/busybox mkdir /new; /bin/busybox cat /etc/marker'
      echo "exit=$?"
    done
    echo "marker=$(cat "$src/root/etc/marker")"
    [ "$before" = "$(cd "$src/root" && find . | sort | sha256sum)" ] && echo "tree unchanged"
    tar -tf "$src/root.tar" | grep -q '^./bin/sh$' && echo "tar unchanged"
  `);
  t.is(r.stdout.toString(), 'changed\nexit=0\nchanged\nexit=0\nmarker=original\ntree unchanged\ntar unchanged\n');
});

serial('two pods run at once, each in its own VM', async (t) => {
  t.log(guest().description);
  const r = await sh(`
    d=$(mktemp -d)
    $vmctr run --name one default -- sh -c 'sleep 2; echo one; cat /proc/sys/kernel/random/boot_id' >"$d/one" 2>&1 &
    a=$!
    $vmctr run --name two default -- sh -c 'sleep 2; echo two; cat /proc/sys/kernel/random/boot_id' >"$d/two" 2>&1 &
    b=$!
    wait $a; echo "one exit=$?"
    wait $b; echo "two exit=$?"
    head -1 "$d/one"; head -1 "$d/two"
    [ "$(tail -1 "$d/one")" != "$(tail -1 "$d/two")" ] && echo "different kernels"
    $vmctr ps -a | awk 'NR > 1 { print $1, $NF }'
    # For a failure's report: the end of each guest's kernel log (stderr).
    for p in one two; do echo "--- $p's console:"; tail -30 "$VMCTR_ROOT/pods/$p/console.log"; done >&2
    $vmctr rm one two
  `);
  t.is(r.stdout.toString(), 'one exit=0\ntwo exit=0\none\ntwo\ndifferent kernels\none (0)\ntwo (0)\none\ntwo\n', r.stderr.toString());
});

serial('a guest kernel panic ends the pod with exit 250 and a one-line reason', async (t) => {
  t.log(guest().description);
  // A hostile container as root in its guest: panic on OOM, then exhaust memory.
  const r = await run(['--rm', 'default', '--', 'sh', '-c', 'echo 1 >/proc/sys/vm/panic_on_oom; head -c 2097152000 /dev/zero | tail']);
  t.is(r.code, 250);
  t.regex(r.stderr.toString(), /^vmctr: the guest kernel panicked: Out of memory.*\n$/);
});

serial('SIGINT (Ctrl-C) stops the pod; a killed vmctr leaves a record that ps shows and rm removes', async (t) => {
  t.log(guest().description);
  const r = await sh(`
    d=$(mktemp -d)
    start() { # a pod that sleeps, once it is up; its vmctr's pid in $pid
      $vmctr run --name "$1" default -- sh -c 'echo up; exec sleep 1000' >"$d/$1" 2>&1 &
      pid=$!
      for i in $(seq 1 300); do grep -q up "$d/$1" && break; sleep 1; done
    }
    start sleeper; kill -INT $pid; wait $pid; echo "int=$?"
    start victim; kill -KILL $pid; wait $pid; echo "kill=$?"
    $vmctr ps -a
    $vmctr rm sleeper victim; echo "rm=$?"
    $vmctr ps -a | wc -l
  `);
  t.regex(r.stdout.toString(), /int=130\n/);
  t.regex(r.stdout.toString(), /kill=137\n/);
  t.regex(r.stdout.toString(), /\nsleeper .* exited \(130\)\n/);
  t.regex(r.stdout.toString(), /\nvictim .* dead \(its vmctr was killed\)\n/);
  t.regex(r.stdout.toString(), /\nsleeper\nvictim\nrm=0\n1\n/);
});

serial('bad input exits 125 with one line: a taken name, a missing image, a bad -w', async (t) => {
  t.log(guest().description);
  const r = await sh(`
    $vmctr run --name taken default -- true; echo "first=$?"
    $vmctr run --name taken default -- true; echo "second=$?"
    $vmctr run --rm no-such-image:1.0 -- true; echo "missing=$?"
    $vmctr run --rm -w relative default -- true; echo "workdir=$?"
  `);
  const out = r.stdout.toString();
  t.regex(out, /first=0\n/);
  t.regex(out, /second=125\n/);
  t.regex(out, /missing=125\n/);
  t.regex(out, /workdir=125\n/);
  const lines = r.stderr.toString().trim().split('\n');
  t.is(lines.length, 3, r.stderr.toString());
  t.regex(lines[0]!, /^vmctr: a pod named "taken" already exists/);
  t.regex(lines[1]!, /^vmctr: .*no-such-image/);
  t.regex(lines[2]!, /^vmctr: -w needs an absolute path/);
});
