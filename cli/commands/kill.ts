import { podCommandClass } from '../pod-command-class.js';

export default podCommandClass('kill', {
  summary: "Send a signal to a pod's apps; SIGKILL (the default) ends its VM at once.",
});
