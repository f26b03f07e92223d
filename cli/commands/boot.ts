import { Flags } from '@oclif/core';
import { checkHostSupport } from '../../vmm/kvm/host-support.js';
import { BootError } from '../../vmm/boot/linux-loader.js';
import { MAX_CPUS, Vm, type VmConfig, type VmExit } from '../../vmm/vm.js';
import { UserError, VmctrCommand } from '../command.js';
import { defaultKernelPath, demoInitramfsPath, readInputFile } from '../guest-kernel.js';
import { LineBufferedOutput } from '../line-buffered-output.js';

/** Exit codes of `vmctr boot`, by how the guest ended. */
export const BootExitCode = {
  /** The guest rebooted (`reboot`): the normal way for a microVM guest to end. */
  clean: 0,
  /** vmctr could not start the VM: bad input or a host that cannot run guests. */
  error: 1,
  /** Bad usage: unknown flag or bad value. */
  usage: 2,
  /** The guest kernel panicked. */
  panic: 3,
  /** The guest crashed (triple fault, KVM error) or the VMM failed. */
  crash: 4,
  /** Stopped by SIGINT or SIGTERM: 128 + signal number. */
  sigint: 130,
  sigterm: 143,
} as const;

export default class Boot extends VmctrCommand {
  static override summary = 'Boot a Linux microVM and stream its serial console.';
  static override description = `A low-level command, like Firecracker's machine configuration: one VM, one kernel, its console on stdout and stdin.
With no --kernel it boots the project's guest kernel with the demo initramfs, whose init says userspace is up, runs the kernel parameter vmctr_exec="..." as a shell command if given, and reboots.
Exit status: 0 the guest rebooted, 1 vmctr could not start it, 2 bad usage, 3 guest kernel panic, 4 guest crash or VMM failure, 130/143 stopped by SIGINT/SIGTERM.`;

  static override examples = [
    '<%= config.bin %> boot',
    '<%= config.bin %> boot --cpus 2 --cmdline \'quiet vmctr_exec="cat /proc/cpuinfo"\'',
    '<%= config.bin %> boot --kernel ./vmlinux --initrd ./initramfs.cpio.gz --memory 512',
  ];

  static override flags = {
    kernel: Flags.string({ description: 'uncompressed vmlinux with a PVH entry point [default: the project kernel]' }),
    initrd: Flags.string({ description: 'initramfs (cpio, optionally compressed) [default: the demo initramfs when --kernel is not given]' }),
    cmdline: Flags.string({ description: 'extra kernel parameters, after the ones vmctr needs', default: 'quiet' }),
    cpus: Flags.integer({ description: 'number of vCPUs', default: 1, min: 1, max: MAX_CPUS }),
    memory: Flags.integer({ description: 'guest memory in MiB', default: 256 }),
    console: Flags.string({ description: 'the guest console device', options: ['virtio', 'serial'], default: 'virtio' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Boot);
    const kernelPath = flags.kernel ?? defaultKernelPath();
    const initrdPath = flags.initrd ?? (flags.kernel ? undefined : demoInitramfsPath());
    const console = new LineBufferedOutput(process.stdout);
    const config: VmConfig = {
      kernel: readInputFile(kernelPath, 'kernel'),
      initrd: initrdPath === undefined ? undefined : readInputFile(initrdPath, 'initrd'),
      cmdline: flags.cmdline,
      cpus: flags.cpus,
      memoryMiB: flags.memory,
      console,
      consoleDevice: flags.console as 'virtio' | 'serial',
      onDeviceError: (device, message) => process.stderr.write(`vmctr: ${device} stopped: the guest broke the virtio contract: ${message}\n`),
    };
    try {
      Vm.plan(config); // bad input is reported before the host is even looked at
    } catch (e) {
      if (e instanceof BootError) throw new UserError(e.message);
      throw e;
    }
    const host = checkHostSupport();
    if (!host.ok) throw new UserError(`cannot run VMs on this host: ${host.reason}`);

    const vm = Vm.create(config);
    let signalCode: number | undefined;
    const onSignal = (code: number) => () => {
      signalCode ??= code;
      vm.requestStop({ kind: 'stopped' });
    };
    const onInt = onSignal(BootExitCode.sigint);
    const onTerm = onSignal(BootExitCode.sigterm);
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    const forwardInput = (chunk: Buffer) => {
      const taken = config.consoleDevice === 'serial' ? vm.devices.serial.enqueueInput(chunk) : vm.console.input(0, chunk);
      if (!taken) process.stderr.write('vmctr: guest console input dropped: the guest is not reading\n');
    };
    process.stdin.on('data', forwardInput);

    const exit = await vm.run();
    process.stdin.off('data', forwardInput);
    process.stdin.destroy();
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
    console.flush();
    process.exitCode = signalCode ?? this.report(exit);
  }

  private report(exit: VmExit): number {
    switch (exit.kind) {
      case 'reboot':
      case 'poweroff':
        return BootExitCode.clean;
      case 'panic':
        process.stderr.write('vmctr: the guest kernel panicked\n');
        return BootExitCode.panic;
      case 'crash':
        process.stderr.write(`vmctr: the guest crashed: ${exit.detail}\n`);
        return BootExitCode.crash;
      case 'stopped':
        return BootExitCode.crash;
    }
  }
}
