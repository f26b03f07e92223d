import test from 'ava';
import { guestHostForTests } from '../guest-host.js';
import { repoRoot } from '../lab/exec.js';

// End to end: `vmctr boot` of the project's kernel and the demo initramfs,
// on real KVM (this host's, or the nested lab's when this host has none).

const { guest, serial } = guestHostForTests(test);

const vmctr = `${repoRoot}/bin/vmctr`;
const TIMEOUT = 240_000;

function boot(args: string[], input?: string) {
  return guest().exec([vmctr, 'boot', ...args], { cwd: repoRoot, timeoutMs: TIMEOUT, ...(input === undefined ? {} : { input }) });
}

serial('vmctr boot: guest userspace prints its line and the VM exits 0 when the guest reboots', async (t) => {
  t.log(guest().description);
  const r = await boot([]);
  t.is(r.stderr.toString(), '');
  t.regex(r.stdout.toString(), /vmctr demo guest: userspace is up on 1 CPUs, kernel 6\.1\.\d+/);
  t.is(r.code, 0);
});

serial('vmctr boot --cpus 2: the guest sees and brings up two CPUs', async (t) => {
  t.log(guest().description);
  const r = await boot(['--cpus', '2', '--cmdline', 'quiet vmctr_exec="echo online=$(cat /sys/devices/system/cpu/online)"']);
  t.regex(r.stdout.toString(), /userspace is up on 2 CPUs/);
  t.regex(r.stdout.toString(), /online=0-1/);
  t.is(r.code, 0);
});

serial('vmctr boot: a guest that powers off ends the VM with exit 0', async (t) => {
  t.log(guest().description);
  const r = await boot(['--cmdline', 'quiet vmctr_end=poweroff']);
  t.regex(r.stdout.toString(), /userspace is up/);
  t.is(r.code, 0);
});

serial('vmctr boot --console serial: the 16550 UART carries the console', async (t) => {
  t.log(guest().description);
  const r = await boot(['--console', 'serial', '--cmdline', 'quiet vmctr_exec="cat /sys/class/tty/console/active"']);
  t.regex(r.stdout.toString(), /userspace is up/);
  t.regex(r.stdout.toString(), /ttyS0/);
  t.is(r.code, 0);
});

serial('vmctr boot: a guest kernel panic exits 3 with a one-line reason', async (t) => {
  t.log(guest().description);
  // PID 1 exits: "Kernel panic - not syncing: Attempted to kill init!"
  const r = await boot(['--cmdline', 'quiet vmctr_end=exit']);
  t.is(r.code, 3);
  t.is(r.stderr.toString(), 'vmctr: the guest kernel panicked\n');
});

serial('vmctr boot: SIGTERM stops the VM, exits 143 and leaves no process behind', async (t) => {
  t.log(guest().description);
  const script = `
    out=$(mktemp)
    ${vmctr} boot --cmdline 'quiet vmctr_end=shell' </dev/null >"$out" 2>&1 &
    pid=$!
    for i in $(seq 1 600); do grep -q 'userspace is up' "$out" && break; sleep 0.2; done
    grep -q 'userspace is up' "$out" || { echo "guest never came up"; cat "$out"; exit 1; }
    kill -TERM $pid
    wait $pid
    echo "exit=$?"
    sleep 0.2
    if kill -0 $pid 2>/dev/null; then echo "still running"; else echo "gone"; fi
  `;
  const r = await guest().exec(['sh', '-c', script], { cwd: repoRoot, timeoutMs: TIMEOUT });
  t.regex(r.stdout.toString(), /exit=143\ngone\n/);
});

serial('vmctr boot: stdin reaches the guest through hvc0', async (t) => {
  t.log(guest().description);
  // Input is written once the guest is up: the guest's tty only takes input once /dev/console is open.
  const script = `
    dir=$(mktemp -d); mkfifo "$dir/in"
    exec 3<>"$dir/in"
    ${vmctr} boot --cmdline 'quiet vmctr_exec="read line; echo got=$line"' <"$dir/in" >"$dir/out" 2>&1 &
    pid=$!
    for i in $(seq 1 600); do grep -q 'userspace is up' "$dir/out" && break; sleep 0.2; done
    echo hello-from-the-host >&3
    wait $pid
    echo "exit=$?"
    cat "$dir/out"
  `;
  const r = await guest().exec(['sh', '-c', script], { cwd: repoRoot, timeoutMs: TIMEOUT });
  t.regex(r.stdout.toString(), /^exit=0\n/);
  t.regex(r.stdout.toString(), /\ngot=hello-from-the-host\r?\n/);
});
