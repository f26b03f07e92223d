import { podCommandClass } from '../pod-command-class.js';

export default podCommandClass('gc', {
  summary: "Remove pods whose monitor died, and what they held.",
  description: "A pod whose monitor was killed (or crashed) keeps a record that says it runs; gc removes it with its disks, logs, socket and cgroup, the leftovers of a vmctr that died while creating a pod, and empty cgroups of pods that are gone. Pods that ended normally stay until vmctr rm.",
});
