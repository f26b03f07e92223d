// A preload for `vmctr run` (node --import): boot-trace.ts's report, with
// the pod's steps before the guest runs among its marks: podDir when the
// pod's directory is claimed (the kernel found and opened, the agent image
// found, the host checked), podStart when Pod.boot is called (in the pod's monitor, which inherits the preload with execArgv) (the
// directory claimed, the root filesystem prepared). Dev tool for
// bench/boot/startup-split.ts; touches no production code path.
import { marks } from './boot-trace.js';
import { Pod } from '../../pod/pod.js';
import { PodDir } from '../../pod/pod-dir.js';

const create = PodDir.create;
PodDir.create = function (...args: Parameters<typeof PodDir.create>) {
  marks.podDir = performance.now();
  return create.apply(this, args);
};
const boot = Pod.boot;
Pod.boot = function (...args: Parameters<typeof Pod.boot>) {
  marks.podStart = performance.now();
  return boot.apply(this, args);
};
