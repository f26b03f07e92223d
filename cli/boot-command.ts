// `vmctr boot` without oclif: its command line (one definition and one
// parser, for the oclif command in commands/boot.ts and for the CLI's fast
// path in main.ts) and what it does. Nothing here loads oclif.
import { checkHostSupport } from '../vmm/kvm/host-support.js';
import type { FileImage } from '../vmm/boot/boot-image.js';
import { BootError } from '../vmm/boot/linux-loader.js';
import { MAX_CPUS, MAX_MEMORY_MIB, MIN_MEMORY_MIB, Vm, type VmConfig, type VmExit } from '../vmm/vm.js';
import { insecureOptionsFlag, parseCommandLine, type CommandSyntax, type FlagValues } from './flag-spec.js';
import { defaultKernelPath, demoInitramfsPath, openInputFile } from './guest-kernel.js';
import { randomMac } from '../vmm/devices/net/device.js';
import { LineBufferedOutput } from './line-buffered-output.js';
import { UserError } from './user-error.js';
import { Stage1Error, verifyStage1 } from '../stage1/verify.js';
import type { Stage1Artifact } from '../stage1/kind.js';

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

export const bootFlags = {
  kernel: { type: 'string', description: 'uncompressed vmlinux with a PVH entry point, your own choice: not checked against a stage1 manifest [default: the project kernel, checked]' },
  initrd: { type: 'string', description: 'initramfs (cpio, optionally compressed), your own choice: not checked [default: the demo initramfs when --kernel is not given, checked]' },
  cmdline: { type: 'string', description: 'extra kernel parameters, after the ones vmctr needs', default: 'quiet' },
  cpus: { type: 'integer', description: 'number of vCPUs', default: 1, min: 1, max: MAX_CPUS },
  memory: { type: 'integer', description: 'guest memory in MiB', default: 256, min: MIN_MEMORY_MIB, max: MAX_MEMORY_MIB },
  console: { type: 'string', description: 'the guest console device', options: ['virtio', 'serial'], default: 'virtio' },
  tap: { type: 'string', description: 'a virtio-net interface (the guest\'s eth0) on this tap, over vhost-net; configure it with --cmdline ip=...' },
  mac: { type: 'string', description: 'the guest\'s MAC address with --tap [default: a random locally administered one]' },
  ...insecureOptionsFlag,
} as const;

export const bootSyntax = { command: 'boot', flags: bootFlags, usageExitCode: BootExitCode.usage } as const satisfies CommandSyntax;

export type BootFlags = FlagValues<typeof bootFlags>;

/** `vmctr boot`'s flags from its arguments, or 'help'; a usage error is a one-line UserError with exit status 2. */
export function parseBootArgv(argv: readonly string[]): BootFlags | 'help' {
  const line = parseCommandLine(bootSyntax, argv);
  return line === 'help' ? line : line.flags;
}

/** Boots the VM `flags` describe and streams its console; sets process.exitCode by how the guest ended. */
export async function boot(flags: BootFlags): Promise<void> {
  const console = new LineBufferedOutput();
  const vm = createVm(flags, console);
  const running = vm.run();

  // The host side is set up while the guest boots: Node creates process.stdin
  // and process.stdout on first use, loading its stream modules (tens of ms in
  // the nested lab). Exits are handled on this thread, so no console output
  // can arrive before this synchronous block ends.
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
    const taken = flags.console === 'serial' ? vm.devices.serial.enqueueInput(chunk) : vm.console.input(0, chunk);
    if (!taken) process.stderr.write('vmctr: guest console input dropped: the guest is not reading\n');
  };
  process.stdin.on('data', forwardInput);
  console.attach(process.stdout);

  const exit = await running;
  process.stdin.off('data', forwardInput);
  process.stdin.destroy();
  process.off('SIGINT', onInt);
  process.off('SIGTERM', onTerm);
  console.flush();
  process.exitCode = signalCode ?? report(exit);
}

/**
 * Checks the flags' files and the host, then builds the VM. Kernel and
 * initrd are read straight into guest memory (only the kernel's loadable
 * segments), so the files are open only until the VM exists.
 */
function createVm(flags: BootFlags, console: LineBufferedOutput): Vm {
  // The project's artifacts, which vmctr picks itself, must be the ones set-up signed; a file named by a flag is
  // the caller's own choice, as a kernel given to QEMU is (README, "A verified stage1").
  const stage1: Stage1Artifact[] = [];
  const kernelPath = flags.kernel ?? defaultKernelPath();
  if (flags.kernel === undefined) stage1.push({ kind: 'kernel', path: kernelPath });
  const initrdPath = flags.initrd ?? (flags.kernel ? undefined : demoInitramfsPath());
  if (flags.initrd === undefined && initrdPath !== undefined) stage1.push({ kind: 'initramfs', path: initrdPath });
  if (flags.mac !== undefined && flags.tap === undefined) throw new UserError('--mac needs --tap: a MAC address is for a network interface');
  try {
    verifyStage1(stage1, flags['insecure-options'] === 'image');
  } catch (e) {
    if (e instanceof Stage1Error) throw new UserError(e.message);
    throw e;
  }
  const files: FileImage[] = [];
  try {
    const kernel = openInputFile(kernelPath, 'kernel');
    files.push(kernel);
    const initrd = initrdPath === undefined ? undefined : openInputFile(initrdPath, 'initrd');
    if (initrd) files.push(initrd);
    const config: VmConfig = {
      kernel,
      initrd,
      cmdline: flags.cmdline,
      cpus: flags.cpus,
      memoryMiB: flags.memory,
      console,
      consoleDevice: flags.console as 'virtio' | 'serial',
      ...(flags.tap !== undefined ? { net: { tap: flags.tap, mac: flags.mac ?? randomMac() } } : {}),
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
    try {
      return Vm.create(config);
    } catch (e) {
      // What only the host can refuse: a tap, vhost-net.
      if (e instanceof BootError) throw new UserError(e.message);
      throw e;
    }
  } finally {
    for (const f of files) f.close();
  }
}

function report(exit: VmExit): number {
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
