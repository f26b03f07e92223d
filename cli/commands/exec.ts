import { podCommandClass } from '../pod-command-class.js';

export default podCommandClass('exec', {
  summary: "Run a new process in a running pod's app: its root filesystem, user, environment and working directory unless flags say otherwise.",
  description: "Flags come before POD; everything after it is the command. Exit status: the process's; 125 it could not be started; 126/127 as vmctr run.",
  examples: ["<%= config.bin %> exec web -- cat /etc/hostname", "<%= config.bin %> exec -it --app db web -- sh"],
});
