// virtio-net (virtio 1.2, 5.1): one receive and one transmit queue, served
// by a backend outside JavaScript (vhost-net: vmm/vhost/vhost-net.ts), with
// checksum and segmentation offloads both ways and mergeable receive
// buffers. The device itself holds only its configuration: the MAC address
// and a link that is always up.
import { native } from '../../kvm/native.js';
import { BackendDevice } from '../../virtio/backend-device.js';
import { DeviceType, NET_S_LINK_UP, NetFeature, featureBit } from '../../virtio/spec.js';
import type { QueueBackend } from '../../virtio/queue-backend.js';

const QUEUE_SIZE = 256;
/** 5.1.4: mac[6], status (with NetFeature.STATUS). */
const CONFIG_SIZE = 8;

/** Offered to the driver; the ring and header features also need the backend's support. */
const NET_FEATURES = [
  NetFeature.CSUM, NetFeature.GUEST_CSUM, NetFeature.MAC,
  NetFeature.GUEST_TSO4, NetFeature.GUEST_TSO6, NetFeature.GUEST_ECN,
  NetFeature.HOST_TSO4, NetFeature.HOST_TSO6, NetFeature.HOST_ECN,
  NetFeature.STATUS,
].reduce((all, bit) => all | featureBit(bit), 0n);

/** A MAC address as six bytes, from `aa:bb:cc:dd:ee:ff`. */
export function parseMac(text: string): Uint8Array {
  const parts = text.split(':');
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) throw new Error(`invalid MAC address "${text}": use six hex pairs, aa:bb:cc:dd:ee:ff`);
  const mac = Uint8Array.from(parts.map((p) => parseInt(p, 16)));
  if (mac[0]! & 1) throw new Error(`invalid MAC address "${text}": a multicast address`);
  return mac;
}

/** A random unicast, locally administered MAC address (02:..., as IEEE 802 reserves for local use). */
export function randomMac(): string {
  const mac = new Uint8Array(6);
  native.fillRandom(mac);
  mac[0] = (mac[0]! & 0xfc) | 0x02;
  return [...mac].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

export class NetDevice extends BackendDevice {
  readonly deviceType = DeviceType.NET;
  readonly features: bigint;
  readonly queueMaxSizes = [QUEUE_SIZE, QUEUE_SIZE];

  constructor(backend: QueueBackend, mac: Uint8Array) {
    super(backend, new Uint8Array(CONFIG_SIZE));
    // Mergeable receive buffers only where the backend has them: they change what it writes.
    this.features = NET_FEATURES | (backend.features & featureBit(NetFeature.MRG_RXBUF));
    this.config.set(mac, 0);
    new DataView(this.config.buffer).setUint16(6, NET_S_LINK_UP, true);
  }
}
