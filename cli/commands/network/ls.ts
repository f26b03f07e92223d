import { networkCommandClass } from '../../network-command-class.js';

export default networkCommandClass('ls', {
  summary: 'List pod networks, the default vmctr0 first, with how many pods each has.',
});
