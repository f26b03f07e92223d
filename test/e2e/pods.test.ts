import test, { type ExecutionContext } from 'ava';
import { guestHostForTests } from '../guest-host.js';
import { repoRoot } from '../lab/exec.js';

// End to end: pods that outlive the command. Each pod's VMM is its monitor
// process; these tests start pods detached, look into them, enter them,
// stop, kill and remove them, kill their monitors, and check that nothing
// of them is left on the host: no process, no file, no socket.

const { guest, serial } = guestHostForTests(test);

const vmctr = `${repoRoot}/bin/vmctr`;
const TIMEOUT = 420_000;
let states = 0;

/** Runs a shell script where pods run; each test gets its own vmctr state directory. */
function sh(script: string) {
  const root = `/tmp/vmctr-e2e-pods-${process.pid}-${states++}`;
  return guest().exec(['sh', '-c', `set -u\nexport VMCTR_ROOT=${root}\nvmctr=${vmctr}\nd=$(mktemp -d)\n${script}`], { cwd: repoRoot, timeoutMs: TIMEOUT });
}

/** What a test leaves of its pods on the host: pod directories, and processes that name the state directory (monitors). */
const LEFTOVERS = `
  echo "dirs=$(ls -A "$VMCTR_ROOT/pods" 2>/dev/null | grep -v '^.staging$' | wc -l)"
  echo "staging=$(ls -A "$VMCTR_ROOT/pods/.staging" 2>/dev/null | wc -l)"
  echo "processes=$(pgrep -f "$VMCTR_ROOT/pods/" | wc -l)"
  echo "cgroups=$(find /sys/fs/cgroup/vmctr -mindepth 1 -maxdepth 1 -type d 2>/dev/null | wc -l)"
`;

/** LEFTOVERS found nothing: no pod directory, staging directory, monitor process or cgroup. */
function nothingLeft(t: ExecutionContext, out: string): void {
  for (const what of ['dirs', 'staging', 'processes', 'cgroups']) t.is(field(out, what), '0', `${what} left on the host`);
}

function field(out: string, name: string): string | undefined {
  return new RegExp(`^${name}=(.*)$`, 'm').exec(out)?.[1];
}

serial('a detached pod: listed, logged (-f too), exec\'ed into, attached, stopped within its grace period, removed, and nothing left', async (t) => {
  t.log(guest().description);
  const r = await sh(`
    # The lab runs no journald: a stand-in takes its socket, so the monitor finds one.
    journal=/run/systemd/journal/socket fake=
    if [ ! -S $journal ]; then
      mkdir -p /run/systemd/journal; node ${repoRoot}/dist/test/fake-journald.js $journal "$d/journal" & fake=$!
      for i in $(seq 1 100); do [ -S $journal ] && break; sleep 0.1; done
    fi
    id=$($vmctr run -d --name web default -- sh -c 'trap "echo got-term; exit 7" TERM; i=0; while :; do echo "tick $i"; echo "err $i" >&2; i=$((i+1)); sleep 0.2; done')
    echo "run=$? idlen=\${#id}"
    $vmctr ps | awk 'NR > 1 { print "ps=" $1, $(NF-1) }'
    echo "byid=$($vmctr status "$(echo $id | cut -c1-8)" | grep -c '"state": "running"')"
    cg=$($vmctr status web | sed -n 's/^ *"cgroup": "\\(.*\\)",$/\\1/p')
    monitor=$($vmctr status web | tr -d ' \\n' | sed -n 's/.*"monitor":{"pid":\\([0-9]*\\).*/\\1/p')
    for p in $(cat "$cg/cgroup.procs"); do echo "in the cgroup: $p $(tr '\\0' ' ' </proc/$p/cmdline)"; done >&2
    echo "cgroup=$(grep -c "^$monitor$" "$cg/cgroup.procs") $(cat "$cg/memory.max") $(cat "$cg/cpu.max") $(cat "$cg/pids.max")"
    # Charges stay where a page was first touched: the monitor was in the cgroup from its start only if all its anonymous memory is charged there.
    echo "charged=$(( $(cat "$cg/memory.current") >= $(awk '/^RssAnon/ { print $2 * 1024 }' /proc/$monitor/status) ))"
    $vmctr update --memory 1024 --cpus 0.5 web >/dev/null; echo "updated=$? $(cat "$cg/memory.max") $(cat "$cg/cpu.max")"
    $vmctr update --memory 300 web 2>&1; echo "low=$?"
    sleep 1
    echo "first=$($vmctr logs web 2>/dev/null | head -1)"
    echo "stderr=$($vmctr logs web 2>&1 >/dev/null | head -1)"
    echo "tail=$($vmctr logs --tail 3 web 2>&1 | wc -l)"
    if [ -n "$fake" ]; then
      echo "journal=$(grep -c '^{"MESSAGE":"tick 0","PRIORITY":"6",.*"CONTAINER_NAME":"web"' "$d/journal") $(grep -c '^{"MESSAGE":"err 0","PRIORITY":"3",' "$d/journal")"
    else
      echo "journal=$(journalctl --no-pager -o cat CONTAINER_NAME=web PRIORITY=6 | grep -cx 'tick 0') $(journalctl --no-pager -o cat CONTAINER_NAME=web PRIORITY=3 | grep -cx 'err 0')"
    fi
    $vmctr exec web -- sh -c 'echo exec-out; echo exec-err >&2; exit 4' >"$d/exec.out" 2>"$d/exec.err"; echo "exec=$? $(cat "$d/exec.out") $(cat "$d/exec.err")"
    echo "hostname=$($vmctr exec web -- cat /etc/hostname)"
    echo "appcgroup=$($vmctr exec web -- cat /proc/self/cgroup)"
    echo "tty=$($vmctr exec -t web -- tty | tr -d '\\r')"
    echo "notty=$($vmctr exec web -- sh -c 'tty || true')"
    echo "stdin=$(echo piped | $vmctr exec -i web -- cat)"
    $vmctr exec web -- sh -c 'echo kept >/root/mark'; echo "shared=$($vmctr exec web -- cat /root/mark)"
    $vmctr exec web -- no-such-command; echo "missing=$?"
    $vmctr exec --app nope web -- true; echo "noapp=$?"
    echo "attach=$(timeout 60 $vmctr attach web | head -2 | wc -l) still=$($vmctr ps | grep -c web)"
    timeout 60 $vmctr logs -f web >"$d/follow" 2>/dev/null & f=$!
    sleep 1
    start=$(date +%s); $vmctr stop -t 20 web >/dev/null; echo "stop=$? took=$(( $(date +%s) - start ))"
    wait $f; echo "follow=$? term=$(grep -c got-term "$d/follow")"
    $vmctr ps -a | awk 'NR > 1 { print "after=" $1, $NF }'
    $vmctr rm web; echo "rm=$?"
    echo "cgroupgone=$([ -e "$cg" ] && echo no || echo yes)"
    [ -n "$fake" ] && { kill $fake; rm -f $journal; }
    ${LEFTOVERS}
  `);
  const out = r.stdout.toString();
  t.log(out, r.stderr.toString().slice(-3000));
  t.is(field(out, 'run'), '0 idlen=32');
  t.regex(out, /^ps=web running$/m);
  t.is(field(out, 'byid'), '1', 'a pod is found by an id prefix');
  t.is(field(out, 'cgroup'), `1 ${(256 + 160) * 1024 * 1024} 100000 100000 512`, 'the monitor in its cgroup: guest RAM + VMM, one CPU per vCPU');
  t.is(field(out, 'charged'), '1', 'all of the monitor\'s memory is charged to the pod: it started in its cgroup');
  t.is(field(out, 'updated'), `0 ${1024 * 1024 * 1024} 50000 100000`);
  t.regex(out, /--memory 300 is below the pod's guest RAM \(256 MiB\) plus 160 MiB for its VMM: at least 416\nlow=1\n/);
  t.is(field(out, 'first'), 'tick 0');
  t.is(field(out, 'stderr'), 'err 0', 'stderr is logged apart and printed on stderr');
  t.is(field(out, 'tail'), '3', '--tail counts records of both streams');
  t.is(field(out, 'journal'), '1 1', 'each line is in the journal too, under the pod\'s name, stdout as info and stderr as error');
  t.is(field(out, 'exec'), '4 exec-out exec-err');
  t.is(field(out, 'hostname'), 'web');
  t.is(field(out, 'appcgroup'), '0::/vmctr/1', 'an exec\'ed process is in its app\'s own cgroup in the guest');
  t.regex(field(out, 'tty') ?? '', /^\/dev\/pts\/\d+$/);
  t.is(field(out, 'notty'), 'not a tty');
  t.is(field(out, 'stdin'), 'piped');
  t.is(field(out, 'shared'), 'kept', 'exec\'ed processes share the app\'s root filesystem');
  t.is(field(out, 'missing'), '127');
  t.is(field(out, 'noapp'), '125');
  t.is(field(out, 'attach'), '2 still=1', 'a closed stdout ends vmctr attach, not the pod');
  t.regex(field(out, 'stop') ?? '', /^0 took=\d+$/);
  t.true(Number(/took=(\d+)/.exec(field(out, 'stop') ?? '')?.[1]) < 20, 'the app exits on SIGTERM, before the grace period ends');
  t.is(field(out, 'follow'), '0 term=1', 'logs -f sees the last line and ends with the pod');
  t.is(field(out, 'after'), 'web (7)');
  t.is(field(out, 'rm'), '0');
  t.is(field(out, 'cgroupgone'), 'yes');
  nothingLeft(t, out);
});

serial('a monitor killed with SIGKILL: its VM dies with it, ps shows the pod dead, gc frees it; kill -s signals the app; an app that ignores SIGTERM is killed after stop\'s grace', async (t) => {
  t.log(guest().description);
  const r = await sh(`
    $vmctr run -d --name victim default -- sleep 1000 >/dev/null
    pid=$($vmctr status victim | tr -d ' \\n' | sed -n 's/.*"monitor":{"pid":\\([0-9]*\\).*/\\1/p')
    kill -KILL "$pid"; sleep 1
    $vmctr ps -a | awk 'NR > 1 { $1 = $1; print "ps=" $0 }' | sed 's/^ps=\\(victim\\) .* \\(dead .*\\)$/ps=\\1 \\2/'
    echo "gc=$($vmctr gc)"
    $vmctr run -d --name sig default -- sh -c 'trap "exit 5" USR1; while :; do sleep 0.2; done' >/dev/null
    $vmctr kill -s USR1 sig; echo "kill=$?"
    for i in $(seq 1 100); do $vmctr ps -a | grep -q '^sig .*exited' && break; sleep 0.3; done
    $vmctr ps -a | awk '$1 == "sig" { print "sig=" $NF }'
    $vmctr rm sig >/dev/null
    $vmctr run -d --name stubborn default -- sh -c 'trap "" TERM; touch /ready; sleep 1000' >/dev/null
    # Not before the trap is set: a SIGTERM that comes first ends the shell (143).
    for i in $(seq 1 100); do $vmctr exec stubborn -- test -e /ready && break; sleep 0.2; done
    start=$(date +%s); $vmctr stop -t 2 stubborn >/dev/null; echo "stop=$? took=$(( $(date +%s) - start ))"
    $vmctr ps -a | awk 'NR > 1 { print "stubborn=" $NF }'
    $vmctr rm stubborn >/dev/null
    ${LEFTOVERS}
  `);
  const out = r.stdout.toString();
  t.log(out, r.stderr.toString().slice(-3000));
  t.is(field(out, 'ps'), 'victim dead (its monitor was killed)');
  t.is(field(out, 'gc'), 'victim');
  t.is(field(out, 'kill'), '0');
  t.is(field(out, 'sig'), '(5)', 'kill -s sends the signal to the app');
  const took = Number(/^0 took=(\d+)$/.exec(field(out, 'stop') ?? '')?.[1]);
  t.true(took >= 2 && took < 15, `stop waited out its 2 s grace, then ended the VM (took ${took} s)`);
  t.is(field(out, 'stubborn'), '(137)', 'an app killed with its VM ends as SIGKILL would');
  nothingLeft(t, out);
});

serial('20 concurrent vmctr run -d, then 20 concurrent vmctr rm -f: every pod started (or failed cleanly), every pod gone, nothing left', async (t) => {
  t.log(guest().description);
  const r = await sh(`
    for i in $(seq 1 20); do $vmctr run -d --memory 48 --name p$i default -- sleep 1000 >"$d/id$i" 2>"$d/err$i" & done; wait
    echo "ids=$(cat "$d"/id* | grep -c '^[0-9a-f]\\{32\\}$')"
    cat "$d"/err* >&2
    # For a failure's report: the console of a pod that did not start.
    for i in $(seq 1 20); do [ -s "$d/id$i" ] || { echo "--- p$i's console:"; tail -40 "$VMCTR_ROOT/pods/p$i/console.log"; } >&2; done
    echo "running=$($vmctr ps | awk 'NR > 1' | grep -c running)"
    # For a failure's report: how a pod that started and is no longer running ended, and its console.
    $vmctr ps -a | awk 'NR > 1 && !/running/ { print $1 }' | while read -r id; do
      { echo "--- $id is not running:"; $vmctr status "$id"; tail -40 "$VMCTR_ROOT/pods/$id/console.log"; } >&2
    done
    # ... and whether the host's OOM killer took a monitor.
    [ "$($vmctr ps | awk 'NR > 1' | grep -c running)" = 20 ] || dmesg | grep -iE 'out of memory|oom-kill|killed process' | tail -5 >&2
    for i in $(seq 1 20); do $vmctr rm -f p$i >/dev/null 2>>"$d/rmerr" & done; wait
    cat "$d/rmerr" >&2; echo "rmerr=$(wc -l <"$d/rmerr")"
    echo "ps=$($vmctr ps -a | awk 'NR > 1' | wc -l)"
    ${LEFTOVERS}
  `);
  const out = r.stdout.toString();
  t.log(out, r.stderr.toString().slice(-3000));
  // In the lab, about one boot in twenty of a burst triple-faults before the guest prints a byte (an empty console;
  // seen before as November's "two pods run at once" failure, test/lab/README.md): such a pod must fail cleanly, with
  // its one-line error, and leave nothing; any other failure to start fails the test.
  const errors = r.stderr.toString().split('\n').filter((l) => l.startsWith('vmctr: '));
  const tripleFaults = errors.filter((l) => l.startsWith('vmctr: the guest ended before its agent started: the guest crashed: triple fault (the guest shut the CPU down), vCPU '));
  t.deepEqual(errors, tripleFaults, 'no failure to start but the lab\'s early triple fault');
  t.true(tripleFaults.length <= 1, `${tripleFaults.length} of 20 boots triple-faulted`);
  if (tripleFaults.length) t.log(`lab: ${tripleFaults.length} of 20 concurrent boots triple-faulted at once (issue 8): ${tripleFaults.join('; ')}`);
  t.is(field(out, 'ids'), String(20 - tripleFaults.length));
  t.is(field(out, 'running'), String(20 - tripleFaults.length));
  t.is(field(out, 'rmerr'), '0');
  t.is(field(out, 'ps'), '0');
  nothingLeft(t, out);
});

serial('a pod of two apps: they talk over localhost, each has its own root filesystem, and each exit code is kept', async (t) => {
  t.log(guest().description);
  const r = await sh(`
    $vmctr run --name duo default -- sh -c 'echo from-server | nc -l -p 8080 >/dev/null; echo server-side >/etc/who; exit 3' \\
      --- --app-name client default -- sh -c 'for i in $(seq 1 50); do nc 127.0.0.1 8080 </dev/null && break; sleep 0.2; done; cat /etc/who 2>/dev/null || echo own-root; cat /proc/self/cgroup'
    echo "exit=$?"
    $vmctr ps -a | awk 'NR > 1 { print "apps=" $3, $NF }'
    echo "logs=$($vmctr logs --app client duo)"
    $vmctr rm duo >/dev/null
    echo '{"apps": [{"image": "default", "comand": ["true"]}]}' >"$d/pod.json"
    $vmctr run --pod "$d/pod.json" 2>&1; echo "manifest=$?"
  `);
  const out = r.stdout.toString();
  t.log(out, r.stderr.toString().slice(-3000));
  t.regex(out, /^from-server\nown-root\n0::\/vmctr\/2\n/m, 'the second app has its own cgroup in the guest');
  t.is(field(out, 'exit'), '3', 'the pod\'s status is its first failed app\'s');
  t.is(field(out, 'apps'), 'default(3),client(0) (3)');
  t.is(field(out, 'logs'), 'from-server\nown-root'.split('\n')[0]);
  t.regex(out, /apps\[0\]\.comand: unknown field/);
  t.is(field(out, 'manifest'), '125');
});

serial('an attached run behaves as a filter, and a memory-hungry app meets the guest\'s OOM killer, not the host\'s', async (t) => {
  t.log(guest().description);
  const r = await sh(`
    start=$(date +%s)
    ( $vmctr run --rm default -- sh -c 'yes abcdefgh | head -c 100000000'; echo "status=$?" >&2 ) 2>"$d/err" | head -1
    echo "took=$(( $(date +%s) - start )) $(grep status "$d/err")"
    $vmctr run --rm --memory 64 default -- sh -c 'head -c 300m /dev/zero | tail; echo "tail=$?"'; echo "pod=$?"
    ${LEFTOVERS}
  `);
  const out = r.stdout.toString();
  t.log(out, r.stderr.toString().slice(-3000));
  t.regex(out, /^abcdefgh$/m);
  t.regex(out, /^took=\d+ status=141$/m);
  t.true(Number(/^took=(\d+)/m.exec(out)?.[1]) < 30, 'the pipe closing ends the pod at once, not after 100 MB');
  t.is(field(out, 'tail'), '137', 'the guest OOM killer ends the hungry process');
  t.is(field(out, 'pod'), '0', 'and the pod goes on');
  nothingLeft(t, out);
});
