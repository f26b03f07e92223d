import test from 'ava';
import { hostsFile, kernelIpParameter, netmask, resolvConf, type GuestNetwork } from '../../pod/guest-network.js';

// What a networked pod's guest is told: the kernel's ip= parameter, the
// apps' /etc/resolv.conf and /etc/hosts.

const NET: GuestNetwork = { tap: 'vt1', mac: '02:00:00:00:00:01', address: '10.88.0.5', prefixLength: 16, gateway: '10.88.0.1', dns: ['10.0.0.53', '1.1.1.1', '9.9.9.9'] };

test('netmasks from prefix lengths', (t) => {
  t.is(netmask(24), '255.255.255.0');
  t.is(netmask(16), '255.255.0.0');
  t.is(netmask(30), '255.255.255.252');
  t.is(netmask(1), '128.0.0.0');
  for (const bad of [0, 31, 32, 24.5, -1]) t.throws(() => netmask(bad), { message: /invalid prefix length/ });
});

test('ip=: address, gateway, mask, hostname, eth0, no autoconfiguration, the first two resolvers', (t) => {
  t.is(kernelIpParameter(NET, 'web'), 'ip=10.88.0.5::10.88.0.1:255.255.0.0:web:eth0:off:10.0.0.53:1.1.1.1');
  t.is(kernelIpParameter({ ...NET, dns: [] }, 'web'), 'ip=10.88.0.5::10.88.0.1:255.255.0.0:web:eth0:off::');
  t.throws(() => kernelIpParameter({ ...NET, address: '10.88.0.256' }, 'web'), { message: 'invalid pod address "10.88.0.256": an IPv4 address such as 10.88.0.2' });
  t.throws(() => kernelIpParameter({ ...NET, gateway: '10.88.0.1 x' }, 'web'), { message: /invalid gateway/ });
  t.throws(() => kernelIpParameter({ ...NET, dns: ['::1'] }, 'web'), { message: /invalid DNS server "::1"/ });
  t.throws(() => kernelIpParameter(NET, 'a:b'), { message: /invalid hostname/ }, 'a colon would end the field');
});

test('resolv.conf lists every resolver; hosts names the pod on its address', (t) => {
  t.is(resolvConf(NET.dns), 'nameserver 10.0.0.53\nnameserver 1.1.1.1\nnameserver 9.9.9.9\n');
  t.is(resolvConf([]), '');
  t.is(hostsFile('10.88.0.5', 'web'), '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.88.0.5\tweb\n');
  t.throws(() => hostsFile('web', 'web'), { message: /invalid pod address/ });
});
