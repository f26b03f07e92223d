import { podCommandClass } from '../pod-command-class.js';

export default podCommandClass('ps', {
  summary: "List pods (running ones, or all with -a).",
  description: "STATUS is the truth about the pod now: a pod whose monitor died shows as dead, whatever its record said; vmctr gc removes those.",
});
