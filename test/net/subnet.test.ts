import test from 'ava';
import {
  broadcast, contains, formatCidr, formatIpv4, hostRange, mask, overlaps, parseCidr, parseIpv4, reservedOverlap, size, subnetOf, SubnetError,
} from '../../net/subnet.js';

// IPv4 arithmetic, pure: every bad value is one line naming it.

test('addresses parse and format, both ends of the range included', (t) => {
  for (const [text, value] of [['0.0.0.0', 0], ['10.88.0.1', 0x0a580001], ['255.255.255.255', 0xffffffff], ['192.168.1.254', 0xc0a801fe]] as const) {
    t.is(parseIpv4(text), value);
    t.is(formatIpv4(value), text);
  }
});

test('a bad address is one line naming it', (t) => {
  for (const text of ['', '10.88.0', '10.88.0.1.2', '256.0.0.1', '10.088.0.1', '10.88.0.-1', ' 10.88.0.1', '10.88.0.1/24', 'a.b.c.d', '1e1.0.0.1']) {
    const err = t.throws(() => parseIpv4(text), { instanceOf: SubnetError });
    t.is(err?.message, `"${text}" is not an IPv4 address (a.b.c.d, each 0 to 255)`);
  }
});

test('subnets parse and format; host bits set name the subnet meant', (t) => {
  t.deepEqual(parseCidr('10.88.0.0/16'), { network: 0x0a580000, prefixLength: 16 });
  t.deepEqual(parseCidr('0.0.0.0/0'), { network: 0, prefixLength: 0 });
  t.deepEqual(parseCidr('10.1.2.3/32'), { network: 0x0a010203, prefixLength: 32 });
  t.is(formatCidr(parseCidr('172.16.0.0/12')), '172.16.0.0/12');
  t.is(t.throws(() => parseCidr('10.88.1.0/16'))?.message, '"10.88.1.0/16" has host bits set: the subnet is 10.88.0.0/16');
  for (const text of ['10.88.0.0', '10.88.0.0/33', '10.88.0.0/', '10.88.0.0/08', '10.88.0.0/1a', '10.88.0/16', '/16', '10.88.0.0/16/1']) {
    t.is(t.throws(() => parseCidr(text), { instanceOf: SubnetError })?.message, `"${text}" is not an IPv4 subnet (a.b.c.d/n, n from 0 to 32)`);
  }
});

test('masks, sizes, broadcast and host ranges', (t) => {
  t.is(mask(0), 0);
  t.is(mask(8), 0xff000000);
  t.is(mask(24), 0xffffff00);
  t.is(mask(32), 0xffffffff);
  const s = parseCidr('10.89.3.0/24');
  t.is(size(s), 256);
  t.is(formatIpv4(broadcast(s)), '10.89.3.255');
  const range = hostRange(s)!;
  t.is(formatIpv4(range.first), '10.89.3.1');
  t.is(formatIpv4(range.last), '10.89.3.254');
  t.deepEqual(hostRange(parseCidr('10.0.0.0/30')), { first: 0x0a000001, last: 0x0a000002 });
  t.is(hostRange(parseCidr('10.0.0.0/31')), undefined);
  t.is(formatIpv4(broadcast(parseCidr('0.0.0.0/0'))), '255.255.255.255');
  t.deepEqual(subnetOf(parseIpv4('192.168.7.9'), 20), parseCidr('192.168.0.0/20'));
});

test('containment and overlap, either way round', (t) => {
  const big = parseCidr('10.88.0.0/16');
  t.true(contains(big, parseIpv4('10.88.255.255')));
  t.false(contains(big, parseIpv4('10.89.0.0')));
  t.true(contains(parseCidr('0.0.0.0/0'), parseIpv4('203.0.113.7')));
  t.true(overlaps(big, parseCidr('10.88.4.0/24')));
  t.true(overlaps(parseCidr('10.88.4.0/24'), big));
  t.true(overlaps(big, big));
  t.false(overlaps(big, parseCidr('10.89.0.0/24')));
  t.false(overlaps(parseCidr('10.88.0.0/25'), parseCidr('10.88.0.128/25')));
  t.true(overlaps(parseCidr('10.0.0.0/8'), parseCidr('10.255.255.53/32')));
});

test('reserved ranges are named', (t) => {
  t.is(reservedOverlap(parseCidr('127.1.0.0/16')), 'loopback (127.0.0.0/8)');
  t.is(reservedOverlap(parseCidr('96.0.0.0/3')), 'loopback (127.0.0.0/8)');
  t.is(reservedOverlap(parseCidr('169.254.3.0/24')), 'link-local (169.254.0.0/16)');
  t.is(reservedOverlap(parseCidr('239.1.0.0/16')), 'multicast and reserved (224.0.0.0/3)');
  t.is(reservedOverlap(parseCidr('10.88.0.0/16')), undefined);
  t.is(reservedOverlap(parseCidr('192.168.0.0/16')), undefined);
});
