// A pod: one microVM running its apps (containers) through the guest agent.
// The VM boots the agent image read-only as /dev/vda (its /init becomes the
// agent), each block app's root filesystem read-only as /dev/vdb, /dev/vdc,
// ... (an fs app's is a directory of the pod's virtio-fs device instead), then
// the pod's writable layer; the agent puts an overlay over each app's image
// with its upper layer on that disk, so the source never changes. The host
// talks to the agent over the virtio-console port `vmctr.agent`.
import { AgentClient, type ContainerExit, type ContainerProcess } from '../guest-agent/client.js';
import type { ContainerSpec } from '../guest-agent/protocol.js';
import { VOLUMES_TAG } from '../guest-agent/rootfs.js';
import type { BootImage } from '../vmm/boot/boot-image.js';
import { ConsolePortStream } from '../vmm/devices/console/port-stream.js';
import type { SerialSink } from '../vmm/devices/legacy/serial.js';
import { Vm, type VmExit } from '../vmm/vm.js';
import { hostsFile, kernelIpParameter, resolvConf, type GuestNetwork } from './guest-network.js';
import { MAX_APPS } from './pod-spec.js';

export const AGENT_PORT = 'vmctr.agent';
/** The agent image's /init is the agent; its root stays read-only. */
const AGENT_CMDLINE = 'root=/dev/vda ro rootfstype=ext4 init=/init';
/** How long the guest has to power off after its apps ended. */
const SHUTDOWN_GRACE_MS = 10_000;

/** An app's image in the guest: a disk, or the directory `share` of the pod's virtio-fs device. */
export type PodRootfs = { disk: string } | { share: string };

export interface PodConfig {
  /** The guest kernel: bytes, or a file (BootImage) of which Vm.create reads only the loadable segments, during boot(). */
  kernel: Uint8Array | BootImage;
  /** The agent's ext4 image (guest-agent/build-agent-image.sh). */
  agentImage: string;
  /** Each app's root filesystem, in app order: an ext4 image, or a directory the volume backend serves (`volumesSocket`). */
  rootfs: PodRootfs[];
  /** The pod's writable layer (pod/layer-disk.ts): the disk after the apps', on which each app's writes go. */
  layerDisk: string;
  /** The vhost-user socket of the pod's volume backend (pod/volume-backend.ts): the guest gets its virtio-fs device. */
  volumesSocket?: string;
  cpus: number;
  memoryMiB: number;
  /** Extra kernel parameters (default `quiet`). */
  kernelParameters?: string;
  /** The guest kernel's console (kept apart from the apps' output). */
  console: SerialSink;
  /** How long the guest may take from power-on to the agent's hello. */
  agentTimeoutMs?: number;
  /** eth0 on the pod's tap, configured by the guest kernel; the apps get its resolv.conf and hosts. */
  network?: { guest: GuestNetwork; hostname: string };
}

/** Why the VM ended, when it did not end by the pod's own shutdown. */
export type PodEnd = { kind: 'shutdown' } | { kind: 'panic' } | { kind: 'failed'; detail: string };

export type { ContainerExit, ContainerProcess };

export class Pod {
  private stopping = false;
  private channelFailure: string | undefined;

  private constructor(
    private readonly vm: Vm,
    private readonly vmEnded: Promise<VmExit>,
    /** Whether the VM has ended (then a closed channel is its consequence, not the cause). */
    private readonly vmGone: () => boolean,
    private readonly agent: AgentClient,
    /** What each app's /etc/resolv.conf and /etc/hosts say, on a networked pod. */
    private readonly names: ContainerSpec['network'],
    /** Each app's image, as the guest's agent is to mount it. */
    private readonly images: Array<{ device: string; fstype: string } | { share: string }>,
    /** The guest's device for the writable layer. */
    private readonly layerDevice: string,
  ) {}

  /**
   * Boots the VM and waits for its agent. Rejects with a one-line error if
   * the VM cannot be built or the guest never reaches the agent; the VM is
   * gone by then.
   */
  static async boot(config: PodConfig): Promise<Pod> {
    if (config.rootfs.length > MAX_APPS) throw new Error(`at most ${MAX_APPS} apps per pod`);
    if (config.rootfs.some((r) => 'share' in r) && !config.volumesSocket) throw new Error('an app served over virtio-fs needs the pod\'s volume backend');
    const disks = config.rootfs.flatMap((r) => ('disk' in r ? [r.disk] : []));
    // Disks in app order after the agent's: /dev/vdb is the first block app's.
    let disk = 0;
    const images = config.rootfs.map((r) => ('disk' in r ? { device: diskDevice(1 + disk++), fstype: 'ext4' } : { share: r.share }));
    const port = new ConsolePortStream();
    const net = config.network;
    const ipParameter = net ? ` ${kernelIpParameter(net.guest, net.hostname)}` : '';
    const vm = Vm.create({
      kernel: config.kernel,
      cmdline: `${config.kernelParameters ?? 'quiet'} ${AGENT_CMDLINE}${ipParameter}`,
      cpus: config.cpus,
      memoryMiB: config.memoryMiB,
      console: config.console,
      disks: [
        { path: config.agentImage, readOnly: true, serial: 'vmctr-agent' },
        ...disks.map((path, i) => ({ path, readOnly: true, serial: `vmctr-rootfs${i}` })),
        { path: config.layerDisk, readOnly: false, serial: 'vmctr-layer' },
      ],
      ports: [{ name: AGENT_PORT, handler: port }],
      ...(net ? { net: { tap: net.guest.tap, mac: net.guest.mac } } : {}),
      ...(config.volumesSocket ? { fs: { socket: config.volumesSocket, tag: VOLUMES_TAG } } : {}),
    });
    const vmEnded = vm.run();
    // The VM's end is the channel's: the agent client then fails whatever waits on it.
    let vmGone = false;
    void vmEnded.then(() => {
      vmGone = true;
      port.destroy();
    });
    let agent: AgentClient;
    try {
      agent = await AgentClient.connect(port, { timeoutMs: config.agentTimeoutMs ?? 120_000 });
    } catch (err) {
      vm.requestStop();
      const exit = await vmEnded;
      throw new Error(exit.kind === 'stopped' ? (err as Error).message : `the guest ended before its agent started: ${describeVmExit(exit)}`);
    }
    const names = net ? { resolvConf: resolvConf(net.guest.dns), hosts: hostsFile(net.guest.address, net.hostname) } : undefined;
    return new Pod(vm, vmEnded, () => vmGone, agent, names, images, diskDevice(1 + disks.length));
  }

  /** Starts app `index` (0-based) on its own image, its writes in its own directory of the layer. */
  startApp(index: number, container: Omit<ContainerSpec, 'rootfs'>): ContainerProcess {
    const image = Number.isInteger(index) && index >= 0 ? this.images[index] : undefined;
    if (image === undefined) throw new RangeError(`no app ${index}`);
    return this.watch(this.agent.startContainer({
      ...container,
      ...(this.names ? { network: this.names } : {}),
      rootfs: { ...image, layer: { device: this.layerDevice, fstype: 'ext4', directory: String(index) } },
    }));
  }

  /** A new process in a running app's root filesystem (`vmctr exec`). */
  exec(app: ContainerProcess, container: Omit<ContainerSpec, 'rootfs'>): ContainerProcess {
    return this.watch(this.agent.startContainer({ ...container, rootfs: { container: app.id } }));
  }

  /**
   * A process that ends without an exit failed the channel: the agent broke
   * the protocol or died, so the VM is ended rather than waited for. Unless
   * the VM ended first (a crash): then its end is what the pod reports.
   */
  private watch(proc: ContainerProcess): ContainerProcess {
    proc.exit.catch((err: Error) => {
      if (this.vmGone()) return;
      this.channelFailure ??= err.message;
      this.vm.requestStop();
    });
    return proc;
  }

  /** Asks the agent to end what still runs and power off, and ends the VM if it has not within the grace period; resolves with how the VM ended. */
  async shutdown(): Promise<PodEnd> {
    const grace = setTimeout(() => this.kill(), SHUTDOWN_GRACE_MS);
    await this.agent.shutdown();
    const end = await this.ended();
    clearTimeout(grace);
    return end;
  }

  /** Resolves with how the VM ended, whoever ended it. */
  async ended(): Promise<PodEnd> {
    const vmExit = await this.vmEnded;
    if (vmExit.kind === 'panic') return { kind: 'panic' };
    if (this.channelFailure) return { kind: 'failed', detail: `the agent channel failed: ${this.channelFailure}` };
    if (vmExit.kind === 'reboot' || (vmExit.kind === 'stopped' && this.stopping)) return { kind: 'shutdown' };
    return { kind: 'failed', detail: describeVmExit(vmExit) };
  }

  /** Ends the VM now, whatever the apps are doing. */
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

/** The guest's name for virtio-blk disk `index` (0-based, in the order given to the VM): /dev/vda, /dev/vdb, ... */
function diskDevice(index: number): string {
  return `/dev/vd${String.fromCharCode(0x61 + index)}`;
}
