import test from 'ava';
import { guestHostForTests } from '../guest-host.js';
import { repoRoot } from '../lab/exec.js';

// End to end: pods on a network. A web server pod reached at its own
// address and through a forwarded host port (localhost included), a second
// pod reaching the first, the address in `vmctr ps`, a taken --ip refused
// before any VM starts, and nothing of it left once the pods are removed:
// the links, addresses, routes and nftables ruleset compared as text. All
// in a network namespace of the test's own.

const { guest, serial } = guestHostForTests(test);

const vmctr = `${repoRoot}/bin/vmctr`;
const TIMEOUT = 480_000;

/** Runs `script` with vmctr in a new network namespace and state directory of its own. */
function inNamespace(script: string) {
  return guest().exec(['unshare', '--net', '--mount', 'sh', '-c', `set -u
# The lab's L1 cannot load modules on demand (its kernel's usermode helper has no modprobe): what pod networks use, loaded here.
for m in tun vhost_net bridge nf_tables nft_chain_nat nft_nat nft_masq nft_ct nft_fib nft_fib_inet nft_fib_ipv4 nft_reject_inet; do modprobe $m || exit 99; done
ip link set lo up
export VMCTR_ROOT=$(mktemp -d /tmp/vmctr-e2e-net-XXXXXX)
vmctr=${vmctr}
# /usr/sbin's nft: node_modules/.bin has another (@vercel/nft) first on npm's PATH.
# busybox-static's wget crashes here (glibc static): GET with node on the host, nc in the pods.
get() { node -e 'require("http").get(process.argv[1], { timeout: 5000 }, (r) => { let b = ""; r.on("data", (d) => (b += d)); r.on("end", () => console.log(b.trim())); }).on("error", () => {})' "$1"; }
state() { ip -j link; ip -j addr; ip -j route; /usr/sbin/nft list ruleset; }
${script}
rm -rf "$VMCTR_ROOT"`], { cwd: repoRoot, timeoutMs: TIMEOUT });
}

function field(out: string, name: string): string | undefined {
  return new RegExp(`^${name}=(.*)$`, 'm').exec(out)?.[1];
}

serial('a web server pod answers on its address and on a forwarded port; pods on one network talk; nothing is left after rm', async (t) => {
  t.log(guest().description);
  const r = await inNamespace(`
    state >"$VMCTR_ROOT/before"
    $vmctr run -d --name web --net vmctr0 -p 8080:80 default -- sh -c 'mkdir -p /www && echo hello-from-pod >/www/index.html && exec httpd -f -p 80 -h /www' >/dev/null; echo "run=$?"
    ip=$($vmctr ps | awk '$1 == "web" { print $5 }'); echo "ip=$ip"
    for i in $(seq 1 60); do [ -n "$(get "http://$ip/")" ] && break; sleep 1; done
    echo "direct=$(get "http://$ip/")"
    echo "forwarded=$(get http://127.0.0.1:8080/)"
    $vmctr run --rm --net vmctr0 --ip "$ip" default -- true 2>&1; echo "taken=$?"
    $vmctr run --rm --net vmctr0 -p 8080:80 default -- true 2>&1; echo "portused=$?"
    echo "peer=$($vmctr run --rm --net vmctr0 default -- sh -c "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc $ip 80 | grep -c hello-from-pod" 2>&1)"
    echo "resolv=$($vmctr exec web -- cat /etc/resolv.conf | head -1)"
    echo "hosts=$($vmctr exec web -- grep -c web /etc/hosts)"
    $vmctr rm -f web >/dev/null; echo "rm=$?"
    state >"$VMCTR_ROOT/after"
    diff "$VMCTR_ROOT/before" "$VMCTR_ROOT/after" >&2; echo "same=$?"
  `);
  const out = r.stdout.toString();
  t.log(out, r.stderr.toString().slice(-3000));
  t.is(field(out, 'run'), '0');
  t.regex(field(out, 'ip') ?? '', /^10\.88\.0\.\d+$/, 'ps shows the pod\'s address');
  t.is(field(out, 'direct'), 'hello-from-pod');
  t.is(field(out, 'forwarded'), 'hello-from-pod', 'the host port forwards to the pod, from localhost too');
  t.regex(out, /^vmctr: .*\S.*\ntaken=125$/m, 'a taken --ip is one line before any VM starts');
  t.regex(out, /^vmctr: .*8080.*\nportused=125$/m, 'a host port in use is one line before any VM starts');
  t.is(field(out, 'peer'), '1', 'a pod on the same network reaches it');
  t.regex(field(out, 'resolv') ?? '', /^nameserver \S+$/);
  t.is(field(out, 'hosts'), '1');
  t.is(field(out, 'rm'), '0');
  t.is(field(out, 'same'), '0', 'links, addresses, routes and ruleset are as before');
});

serial('a pod whose monitor was killed with SIGKILL leaves its tap and rules until gc, which removes them', async (t) => {
  t.log(guest().description);
  const r = await inNamespace(`
    state >"$VMCTR_ROOT/before"
    $vmctr run -d --name victim --net vmctr0 -p 8081:80 default -- sleep 1000 >/dev/null; echo "run=$?"
    pid=$($vmctr status victim | tr -d ' \\n' | sed -n 's/.*"monitor":{"pid":\\([0-9]*\\).*/\\1/p')
    kill -9 "$pid"; sleep 2
    echo "taps=$(ip -o link show type tun | wc -l)"
    $vmctr gc >/dev/null; echo "gc=$?"
    state >"$VMCTR_ROOT/after"
    diff "$VMCTR_ROOT/before" "$VMCTR_ROOT/after" >&2; echo "same=$?"
  `);
  const out = r.stdout.toString();
  t.log(out, r.stderr.toString().slice(-3000));
  t.is(field(out, 'run'), '0');
  t.is(field(out, 'taps'), '1', 'the dead pod\'s tap is still there');
  t.is(field(out, 'gc'), '0');
  t.is(field(out, 'same'), '0', 'gc left links, addresses, routes and ruleset as before');
});

serial('pods on two networks cannot reach each other; a network no pod uses is removed', async (t) => {
  t.log(guest().description);
  const r = await inNamespace(`
    state >"$VMCTR_ROOT/before"
    $vmctr network create --subnet 10.77.0.0/24 other >/dev/null; echo "created=$?"
    $vmctr run -d --name web --net vmctr0 -p 8082:80 default -- sh -c 'mkdir -p /www && echo hello-from-pod >/www/index.html && exec httpd -f -p 80 -h /www' >/dev/null; echo "run=$?"
    ip=$($vmctr ps | awk '$1 == "web" { print $5 }')
    for i in $(seq 1 60); do [ -n "$(get "http://$ip/")" ] && break; sleep 1; done
    echo "other=$($vmctr run --rm --net other default -- sh -c "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 5 nc $ip 80 2>/dev/null | grep -c hello-from-pod" 2>/dev/null)"
    echo "same=$($vmctr run --rm --net vmctr0 default -- sh -c "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 5 nc $ip 80 | grep -c hello-from-pod" 2>&1)"
    $vmctr network rm other 2>&1 >/dev/null; echo "rmother=$?"
    $vmctr rm -f web >/dev/null; echo "rm=$?"
    state >"$VMCTR_ROOT/after"
    diff "$VMCTR_ROOT/before" "$VMCTR_ROOT/after" >&2; echo "clean=$?"
  `);
  const out = r.stdout.toString();
  t.log(out, r.stderr.toString().slice(-3000));
  t.is(field(out, 'created'), '0');
  t.is(field(out, 'run'), '0');
  t.is(field(out, 'other'), '0', 'a pod on another network does not reach it');
  t.is(field(out, 'same'), '1', 'a pod on its network does');
  t.is(field(out, 'rmother'), '0', 'a network no pod uses is removed');
  t.is(field(out, 'rm'), '0');
  t.is(field(out, 'clean'), '0', 'links, addresses, routes and ruleset are as before');
});
