import test from 'ava';
import { conflicts, formatHostSide, formatPortForward, parsePortForward, PortForwardError } from '../../net/port-forward.js';
import { parseIpv4 } from '../../net/subnet.js';

// -p [HOSTIP:]HOSTPORT:PODPORT[/tcp|udp], pure.

test('forwards parse, tcp unless said, and format back', (t) => {
  t.deepEqual(parsePortForward('8080:80'), { hostPort: 8080, podPort: 80, protocol: 'tcp' });
  t.deepEqual(parsePortForward('127.0.0.1:5353:53/udp'), { hostIp: parseIpv4('127.0.0.1'), hostPort: 5353, podPort: 53, protocol: 'udp' });
  t.deepEqual(parsePortForward('1:65535/tcp'), { hostPort: 1, podPort: 65535, protocol: 'tcp' });
  for (const spec of ['8080:80/tcp', '127.0.0.1:5353:53/udp']) t.is(formatPortForward(parsePortForward(spec)), spec);
  t.is(formatHostSide(parsePortForward('10.0.0.1:80:8080')), '10.0.0.1:80/tcp');
});

test('a bad forward is one line naming it', (t) => {
  const cases: [string, string][] = [
    ['80', 'port forward "80": expected [HOSTIP:]HOSTPORT:PODPORT[/tcp|udp]'],
    ['1:2:3:4', 'port forward "1:2:3:4": expected [HOSTIP:]HOSTPORT:PODPORT[/tcp|udp]'],
    ['80:80/sctp', 'port forward "80:80/sctp": expected [HOSTIP:]HOSTPORT:PODPORT[/tcp|udp]'],
    ['80:80/tcp/udp', 'port forward "80:80/tcp/udp": expected [HOSTIP:]HOSTPORT:PODPORT[/tcp|udp]'],
    ['0:80', 'port forward "0:80": "0" is not a port (1 to 65535)'],
    ['80:65536', 'port forward "80:65536": "65536" is not a port (1 to 65535)'],
    ['web:80', 'port forward "web:80": "web" is not a port (1 to 65535)'],
    ['080:80', 'port forward "080:80": "080" is not a port (1 to 65535)'],
    ['localhost:80:80', 'port forward "localhost:80:80": "localhost" is not an IPv4 address (a.b.c.d, each 0 to 255)'],
  ];
  for (const [spec, message] of cases) t.is(t.throws(() => parsePortForward(spec), { instanceOf: PortForwardError })?.message, message);
});

test('two forwards conflict on the same protocol and port when one takes every address or both the same', (t) => {
  const c = (a: string, b: string) => conflicts(parsePortForward(a), parsePortForward(b));
  t.true(c('80:1', '80:2'));
  t.true(c('80:1', '10.0.0.1:80:2'));
  t.true(c('10.0.0.1:80:1', '10.0.0.1:80:2'));
  t.false(c('10.0.0.1:80:1', '10.0.0.2:80:2'));
  t.false(c('80:1', '80:1/udp'));
  t.false(c('80:1', '81:1'));
});
