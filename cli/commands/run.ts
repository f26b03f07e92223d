import { Args } from '@oclif/core';
import { VmctrCommand } from '../command.js';
import { toOclifFlags } from '../oclif-flags.js';
import { parseRunApps, runAppsSyntax } from '../run-apps.js';
import { run, runError, RunExitCode } from '../run-command.js';

export { RunExitCode };

export default class Run extends VmctrCommand {
  static override summary = 'Run a command in a new pod: its own microVM.';
  static override description = `ROOTFS is "default" (the built-in busybox image), a directory or a tar of a root filesystem, or an image in the store (vmctr pull / vmctr load).
Flags come before ROOTFS; everything after it is the container's command, flags included, as with docker run (a "--" right after ROOTFS is dropped).
The root filesystem reaches the guest as a read-only disk (--rootfs fs: the host directory itself, over virtio-fs); the container's writes go to the pod's writable layer, so the source never changes.
The guest kernel and agent image boot only if they match the stage1 manifests set-up signed (--insecure-options=image skips that check, for development).
Exit status: the container's; 128+N if a signal N ended it; 125 vmctr could not start the pod (bad usage included); 126 the command cannot run; 127 the command was not found; 250 the guest kernel panicked; 251 the VM or its agent failed.`;

  static override examples = [
    '<%= config.bin %> run default -- echo hello',
    '<%= config.bin %> run --rm -e GREETING=hi -w /tmp -u vmctr default -- sh -c \'echo $GREETING from $(pwd) as $(id -un)\'',
    '<%= config.bin %> run -it default -- sh',
    '<%= config.bin %> run ./rootfs.tar -- /bin/true',
  ];

  // For help only: the arguments are read by run-command.ts's parser, as on the CLI's fast path.
  static override strict = false;
  static override args = {
    rootfs: Args.string({ description: runAppsSyntax.operand.description, required: false }),
  };

  static override flags = toOclifFlags(runAppsSyntax.flags);

  protected override async catch(err: Error): Promise<never> {
    return super.catch(runError(err));
  }

  async run(): Promise<void> {
    const request = parseRunApps(this.argv);
    if (request === 'help') return this.showOwnHelp();
    await run(request);
  }
}
