// A preload for `vmctr run` (node --import): boot-trace.ts's report, with
// the pod's steps before the guest runs among its marks: podDir when the
// pod's directory is claimed (the kernel found and opened, the agent image
// found, the host checked), podStart when Pod.start is called (the
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
const start = Pod.start;
Pod.start = function (...args: Parameters<typeof Pod.start>) {
  marks.podStart = performance.now();
  return start.apply(this, args);
};
