import { podCommandClass } from '../pod-command-class.js';

export default podCommandClass('rm', {
  summary: "Remove pods that have ended, and everything they held.",
  description: "A pod that is ending is waited for; a running one is refused unless --force, which ends its VM first.",
});
