import { podCommandClass } from '../pod-command-class.js';

export default podCommandClass('logs', {
  summary: "Print a pod's app logs (stdout and stderr, kept by its monitor), running or ended.",
});
