// virtio-fs (virtio 1.2, 5.11): a FUSE session between the guest's kernel
// and a file server on the host, over a high-priority queue and a request
// queue that a vhost-user backend (virtiofsd: vmm/vhost/vhost-user-fs.ts)
// serves straight from guest memory. The device itself holds only its
// configuration: the tag the guest mounts it by.
import { BackendDevice } from '../../virtio/backend-device.js';
import type { QueueBackend } from '../../virtio/queue-backend.js';
import { DeviceType, Feature, featureBit } from '../../virtio/spec.js';

/** 5.11.4: tag[36], le32 num_request_queues. */
export const FS_TAG_SIZE = 36;
const CONFIG_SIZE = FS_TAG_SIZE + 4;
/** 5.11.2: queue 0 is hiprio (FORGET, INTERRUPT), then the request queues; one is enough for one guest vCPU's worth of requests. */
const HIPRIO_QUEUE_SIZE = 128;
const REQUEST_QUEUE_SIZE = 1024;
/** The transport offers these ring features whatever the device: the backend must handle them. */
const RING_FEATURES = featureBit(Feature.RING_EVENT_IDX) | featureBit(Feature.RING_INDIRECT_DESC);

/** A tag the guest can mount: 1 to 35 bytes of UTF-8 (NUL-padded in the configuration), no NUL. */
export function encodeFsTag(tag: string): Uint8Array {
  const bytes = new TextEncoder().encode(tag);
  if (bytes.length === 0 || bytes.length >= FS_TAG_SIZE || bytes.includes(0)) throw new Error(`invalid virtio-fs tag "${tag}": 1 to ${FS_TAG_SIZE - 1} bytes, no NUL`);
  return bytes;
}

export class FsDevice extends BackendDevice {
  readonly deviceType = DeviceType.FS;
  /** 5.11.3: no device features (VIRTIO_FS_F_NOTIFICATION is not offered). */
  readonly features = 0n;
  readonly queueMaxSizes = [HIPRIO_QUEUE_SIZE, REQUEST_QUEUE_SIZE];

  constructor(backend: QueueBackend, tag: string) {
    super(backend, new Uint8Array(CONFIG_SIZE));
    const missing = RING_FEATURES & ~backend.features;
    if (missing) throw new Error(`the virtio-fs backend lacks ring features 0x${missing.toString(16)} (event index, indirect descriptors)`);
    this.config.set(encodeFsTag(tag), 0);
    new DataView(this.config.buffer).setUint32(FS_TAG_SIZE, this.queueMaxSizes.length - 1, true);
  }
}
