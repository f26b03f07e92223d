// A pod: one microVM running one container through the guest agent. The
// VM boots the agent image read-only as /dev/vda (its /init becomes the
// agent), the container's root filesystem read-only as /dev/vdb (the agent
// puts a tmpfs layer over it, so the container's writes stay in the pod and
// the source never changes), and the host talks to the agent over the
// virtio-console port `vmctr.agent`.
import { AgentClient, type ContainerExit, type ContainerProcess } from '../guest-agent/client.js';
import type { ContainerSpec } from '../guest-agent/protocol.js';
import type { BootImage } from '../vmm/boot/boot-image.js';
import { ConsolePortStream } from '../vmm/devices/console/port-stream.js';
import type { SerialSink } from '../vmm/devices/legacy/serial.js';
import { Vm, type VmExit } from '../vmm/vm.js';

export const AGENT_PORT = 'vmctr.agent';
/** The agent image's /init is the agent; its root stays read-only. */
const AGENT_CMDLINE = 'root=/dev/vda ro rootfstype=ext4 init=/init';
const ROOTFS_DEVICE = '/dev/vdb';
/** How long the guest has to power off after the container ended. */
const SHUTDOWN_GRACE_MS = 10_000;

export interface PodConfig {
  /** The guest kernel: bytes, or a file (BootImage) of which Vm.create reads only the loadable segments, during start(). */
  kernel: Uint8Array | BootImage;
  /** The agent's ext4 image (guest-agent/build-agent-image.sh). */
  agentImage: string;
  /** The container's root filesystem as an ext4 image. */
  rootfsDisk: string;
  /** The container process: everything but the root filesystem. */
  container: Omit<ContainerSpec, 'rootfs'>;
  cpus: number;
  memoryMiB: number;
  /** Extra kernel parameters (default `quiet`). */
  kernelParameters?: string;
  /** The guest kernel's console (kept apart from the container's output). */
  console: SerialSink;
  /** How long the guest may take from power-on to the agent's hello. */
  agentTimeoutMs?: number;
}

/** How a pod ended: its container's status, or why the VM ended without one. */
export type PodExit =
  | { kind: 'exited'; exit: ContainerExit }
  | { kind: 'panic' }
  | { kind: 'failed'; detail: string };

export class Pod {
  private stopping = false;

  private constructor(
    private readonly vm: Vm,
    private readonly vmEnded: Promise<VmExit>,
    private readonly agent: AgentClient,
    readonly process: ContainerProcess,
  ) {}

  /**
   * Boots the VM and starts the container. Rejects with a one-line error if
   * the VM cannot be built or the guest never reaches the agent; the VM is
   * gone by then.
   */
  static async start(config: PodConfig): Promise<Pod> {
    const port = new ConsolePortStream();
    const vm = Vm.create({
      kernel: config.kernel,
      cmdline: `${config.kernelParameters ?? 'quiet'} ${AGENT_CMDLINE}`,
      cpus: config.cpus,
      memoryMiB: config.memoryMiB,
      console: config.console,
      disks: [
        { path: config.agentImage, readOnly: true, serial: 'vmctr-agent' },
        { path: config.rootfsDisk, readOnly: true, serial: 'vmctr-rootfs' },
      ],
      ports: [{ name: AGENT_PORT, handler: port }],
    });
    const vmEnded = vm.run();
    // The VM's end is the channel's: the agent client then fails whatever waits on it.
    void vmEnded.then(() => port.destroy());
    let agent: AgentClient;
    try {
      agent = await AgentClient.connect(port, { timeoutMs: config.agentTimeoutMs ?? 120_000 });
    } catch (err) {
      vm.requestStop();
      const exit = await vmEnded;
      throw new Error(exit.kind === 'stopped' ? (err as Error).message : `the guest ended before its agent started: ${describeVmExit(exit)}`);
    }
    const process = agent.startContainer({ ...config.container, rootfs: { device: ROOTFS_DEVICE, fstype: 'ext4' } });
    return new Pod(vm, vmEnded, agent, process);
  }

  /** Resolves once the container ended and the VM is gone. */
  async wait(): Promise<PodExit> {
    let exit: ContainerExit | undefined;
    let failure: string | undefined;
    try {
      exit = await this.process.exit;
    } catch (err) {
      failure = (err as Error).message;
    }
    if (exit) {
      // The agent syncs, unmounts and reboots the guest; a guest that does not is stopped.
      const grace = setTimeout(() => this.vm.requestStop(), SHUTDOWN_GRACE_MS);
      await this.agent.shutdown();
      const vmExit = await this.vmEnded;
      clearTimeout(grace);
      if (vmExit.kind === 'panic') return { kind: 'panic' };
      return { kind: 'exited', exit };
    }
    const vmExit = await this.vmEnded;
    if (vmExit.kind === 'panic') return { kind: 'panic' };
    if (this.stopping) return { kind: 'failed', detail: 'the pod was stopped' };
    return { kind: 'failed', detail: vmExit.kind === 'stopped' ? `the agent channel failed: ${failure}` : describeVmExit(vmExit) };
  }

  /** Ends the VM now, whatever the container is doing. */
  kill(): void {
    this.stopping = true;
    this.vm.requestStop();
  }
}

export function describeVmExit(exit: VmExit): string {
  switch (exit.kind) {
    case 'reboot': return 'the guest rebooted';
    case 'poweroff': return 'the guest powered off';
    case 'panic': return 'the guest kernel panicked';
    case 'crash': return `the guest crashed: ${exit.detail}`;
    case 'stopped': return 'the VM was stopped';
  }
}
