import { networkCommandClass } from '../../network-command-class.js';

export default networkCommandClass('inspect', {
  summary: "A network as JSON: its subnet, gateway and bridge, and its pods' addresses and forwarded ports.",
});
