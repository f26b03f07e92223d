import { podCommandClass } from '../pod-command-class.js';

export default podCommandClass('update', {
  summary: "Change a running pod's host limits: its cgroup's memory and CPU quota.",
  description: "--memory is the host memory of the whole pod, VMM included, in MiB; it cannot go below the guest's RAM plus the VMM's overhead (the guest's own RAM is fixed while it runs: no memory hotplug or balloon). --cpus is a CPU quota (0.01 to the pod's vCPUs).",
});
