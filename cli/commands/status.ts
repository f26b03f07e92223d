import { podCommandClass } from '../pod-command-class.js';

export default podCommandClass('status', {
  summary: "Print a pod's record and its status now, as JSON.",
});
