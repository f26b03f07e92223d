import { BootExitCode, boot, bootFlags, parseBootArgv } from '../boot-command.js';
import { VmctrCommand } from '../command.js';
import { toOclifFlags } from '../oclif-flags.js';

export { BootExitCode };

export default class Boot extends VmctrCommand {
  static override summary = 'Boot a Linux microVM and stream its serial console.';
  static override description = `A low-level command, like Firecracker's machine configuration: one VM, one kernel, its console on stdout and stdin.
With no --kernel it boots the project's guest kernel with the demo initramfs (each checked against the stage1 manifest set-up signed; --insecure-options=image skips that), whose init says userspace is up, runs the kernel parameter vmctr_exec="..." as a shell command if given, and reboots.
Exit status: 0 the guest rebooted, 1 vmctr could not start it, 2 bad usage, 3 guest kernel panic, 4 guest crash or VMM failure, 130/143 stopped by SIGINT/SIGTERM.`;

  static override examples = [
    '<%= config.bin %> boot',
    '<%= config.bin %> boot --cpus 2 --cmdline \'quiet vmctr_exec="cat /proc/cpuinfo"\'',
    '<%= config.bin %> boot --kernel ./vmlinux --initrd ./initramfs.cpio.gz --memory 512',
  ];

  static override flags = toOclifFlags(bootFlags);

  // The flags are read by boot-command.ts's parser, as on the CLI's fast path: the same values and errors either way.
  async run(): Promise<void> {
    const flags = parseBootArgv(this.argv);
    if (flags === 'help') return this.showOwnHelp();
    await boot(flags);
  }
}
