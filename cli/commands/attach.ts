import { podCommandClass } from '../pod-command-class.js';

export default podCommandClass('attach', {
  summary: "Attach to a running pod: its apps' output, and its first app's input if it was started with -i; exits with the pod's status.",
  description: "Signals (Ctrl-C without a terminal, SIGTERM...) go to the apps. Leaving (a closed stdout, a killed vmctr attach) does not stop a detached pod.",
});
