import { podCommandClass } from '../pod-command-class.js';

export default podCommandClass('stop', {
  summary: "Stop a pod: SIGTERM to its apps, its VM ended after the grace period.",
});
