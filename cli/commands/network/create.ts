import { networkCommandClass } from '../../network-command-class.js';

export default networkCommandClass('create', {
  summary: 'Create a pod network: a bridge of its own on the host, made when its first pod starts.',
  description: 'Refused when the subnet overlaps another vmctr network, an address or route of the host, or its nameservers. Pods on one network reach each other; pods on different networks do not (net/NETWORKING.md).',
  examples: ['vmctr network create web', 'vmctr network create --subnet 10.90.0.0/24 db'],
});
