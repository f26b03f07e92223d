import test from 'ava';
import { guestHostForTests } from '../guest-host.js';
import { repoRoot } from '../lab/exec.js';

// End to end: virtio-net over vhost-net. `vmctr boot --tap` gives the demo
// guest an eth0 on a tap this test makes (in a network namespace of its
// own, so the host's links are never touched), configured by the kernel
// from `ip=` on its command line. Traffic goes both ways: ICMP, then 8 MiB
// over TCP each way, which the guest's and the tap's checksum and
// segmentation offloads carry.

const { guest, serial } = guestHostForTests(test);

const vmctr = `${repoRoot}/bin/vmctr`;
const TIMEOUT = 300_000;
const BYTES = 8 * 1024 * 1024;

/** Runs `script` in a new network namespace with tap `vt0` (10.99.0.1/24) in it. */
function inTapNamespace(script: string) {
  return guest().exec(['unshare', '--net', 'sh', '-c', `set -u
modprobe tun && modprobe vhost_net || exit 99
ip link set lo up
ip tuntap add dev vt0 mode tap && ip addr add 10.99.0.1/24 dev vt0 && ip link set vt0 up || exit 98
vmctr=${vmctr}
${script}`], { cwd: repoRoot, timeoutMs: TIMEOUT });
}

const GUEST_IP = 'ip=10.99.0.2::10.99.0.1:255.255.255.0::eth0:off';
/** A TCP sink on the host side: prints how many bytes it received. */
const COUNT_SERVER = `node -e 'let n=0; const s=require("net").createServer((c)=>{c.on("data",(d)=>n+=d.length); c.on("end",()=>{console.log("received="+n); s.close();});}); s.listen(7000, "10.99.0.1")'`;

serial('vmctr boot --tap: the guest reaches the host and the host the guest, ICMP and TCP both ways', async (t) => {
  t.log(guest().description);
  const r = await inTapNamespace(`
    ${COUNT_SERVER} > received.txt & server=$!
    sleep 1
    # The guest: ping the host, send ${BYTES} bytes to it, then take ${BYTES} from it.
    $vmctr boot --tap vt0 --mac 02:00:00:00:00:02 --cmdline 'quiet ${GUEST_IP} vmctr_exec="busybox ping -c 2 -W 5 10.99.0.1 | busybox grep -c ttl=; busybox dd if=/dev/zero bs=65536 count=${BYTES / 65536} 2>/dev/null | busybox nc 10.99.0.1 7000; echo sent=$?; busybox nc -l -p 7001 | busybox wc -c | busybox sed s/^/got=/; busybox cat /sys/class/net/eth0/address"' & vm=$!
    # Until the guest answers; a VM that ended early ends the wait.
    for i in $(seq 1 200); do busybox ping -c 1 -W 1 10.99.0.2 >/dev/null 2>&1 && break; kill -0 $vm 2>/dev/null || break; sleep 0.5; done
    echo "hostping=$(busybox ping -c 2 -W 5 10.99.0.2 | grep -c ttl=)"
    kill -0 $vm 2>/dev/null && wait $server; echo "$(cat received.txt)"; kill $server 2>/dev/null
    for i in $(seq 1 100); do kill -0 $vm 2>/dev/null || break; head -c ${BYTES} /dev/zero | timeout 60 busybox nc 10.99.0.2 7001 && break; sleep 0.5; done
    wait $vm; echo "vm=$?"
    rm -f received.txt
  `);
  // The guest's lines come through its console, with \r\n.
  const out = r.stdout.toString().replace(/\r/g, '');
  t.log(out.split('\n').filter((l) => !l.startsWith('[')).join('\n'), r.stderr.toString().slice(-2000));
  t.regex(out, /^2$/m, 'the guest\'s two pings were answered');
  t.regex(out, /^hostping=2$/m, 'the host\'s pings were answered');
  t.regex(out, new RegExp(`^received=${BYTES}$`, 'm'), 'the guest\'s bytes all came');
  t.regex(out, /^sent=0$/m);
  t.regex(out, new RegExp(`^got=${BYTES}$`, 'm'), 'the host\'s bytes all reached the guest');
  t.regex(out, /^02:00:00:00:00:02$/m, 'the MAC given is the guest\'s');
  t.regex(out, /^vm=0$/m);
});

serial('vmctr boot --tap: a missing tap, a bad MAC and --mac alone are one-line errors', async (t) => {
  const r = await inTapNamespace(`
    $vmctr boot --tap vt0 --mac 01:00:00:00:00:01 2>&1; echo "multicast=$?"
    $vmctr boot --tap vt0 --mac zz 2>&1; echo "bad=$?"
    $vmctr boot --mac 02:00:00:00:00:01 2>&1; echo "alone=$?"
    $vmctr boot --tap lo 2>&1; echo "loopback=$?"
    ip link set vt0 down; ip tuntap del dev vt0 mode tap
    $vmctr boot --tap vt0 2>&1; echo "missing=$?"
    $vmctr boot --tap "$(printf 'x%.0s' $(seq 1 16))" 2>&1; echo "long=$?"
  `);
  const out = r.stdout.toString();
  t.regex(out, /^vmctr: invalid MAC address "01:00:00:00:00:01": a multicast address\nmulticast=1$/m);
  t.regex(out, /^vmctr: invalid MAC address "zz": use six hex pairs, aa:bb:cc:dd:ee:ff\nbad=1$/m);
  t.regex(out, /^vmctr: --mac needs --tap: a MAC address is for a network interface\nalone=1$/m);
  t.regex(out, /^vmctr: lo is not a tap device\nloopback=1$/m);
  t.regex(out, /^vmctr: tap vt0 does not exist: create it with ip tuntap add vt0 mode tap\nmissing=1$/m);
  t.regex(out, /^vmctr: invalid tap name "x{16}": 1 to 15 characters, no spaces, '\/' or ':'\nlong=1$/m);
});
