import { networkCommandClass } from '../../network-command-class.js';

export default networkCommandClass('rm', {
  summary: 'Remove pod networks that no pod uses.',
  description: 'The default network, vmctr0, cannot be removed.',
});
