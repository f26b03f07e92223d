// Constants from the Virtual I/O Device (VIRTIO) specification, version 1.2.
// Section numbers in comments.

/** 2.1 Device status field. */
export const DeviceStatus = {
  ACKNOWLEDGE: 1,
  DRIVER: 2,
  DRIVER_OK: 4,
  FEATURES_OK: 8,
  DEVICE_NEEDS_RESET: 64,
  FAILED: 128,
} as const;

/** 6 Reserved feature bits (bit numbers). */
export const Feature = {
  RING_INDIRECT_DESC: 28,
  RING_EVENT_IDX: 29,
  VERSION_1: 32,
} as const;

export const featureBit = (bit: number): bigint => 1n << BigInt(bit);

/** 2.7.5 The virtqueue descriptor table: flags. */
export const DescFlag = { NEXT: 1, WRITE: 2, INDIRECT: 4 } as const;
export const DESCRIPTOR_SIZE = 16;

/** 2.7.6 / 2.7.8: ring flags. */
export const AVAIL_F_NO_INTERRUPT = 1;
export const USED_F_NO_NOTIFY = 1;

/** 2.7: split virtqueue alignment requirements. */
export const DESC_TABLE_ALIGN = 16;
export const AVAIL_RING_ALIGN = 2;
export const USED_RING_ALIGN = 4;
/** 2.7: a split queue has at most 32768 entries. */
export const MAX_QUEUE_SIZE = 32768;

/** 5 Device types. */
export const DeviceType = { NET: 1, BLOCK: 2, CONSOLE: 3, ENTROPY: 4, VSOCK: 19, FS: 26 } as const;

/** 4.2.2 MMIO device register layout (offsets from the window base). */
export const MmioReg = {
  MAGIC_VALUE: 0x000,
  VERSION: 0x004,
  DEVICE_ID: 0x008,
  VENDOR_ID: 0x00c,
  DEVICE_FEATURES: 0x010,
  DEVICE_FEATURES_SEL: 0x014,
  DRIVER_FEATURES: 0x020,
  DRIVER_FEATURES_SEL: 0x024,
  QUEUE_SEL: 0x030,
  QUEUE_NUM_MAX: 0x034,
  QUEUE_NUM: 0x038,
  QUEUE_READY: 0x044,
  QUEUE_NOTIFY: 0x050,
  INTERRUPT_STATUS: 0x060,
  INTERRUPT_ACK: 0x064,
  STATUS: 0x070,
  QUEUE_DESC_LOW: 0x080,
  QUEUE_DESC_HIGH: 0x084,
  QUEUE_DRIVER_LOW: 0x090,
  QUEUE_DRIVER_HIGH: 0x094,
  QUEUE_DEVICE_LOW: 0x0a0,
  QUEUE_DEVICE_HIGH: 0x0a4,
  SHM_SEL: 0x0ac,
  SHM_LEN_LOW: 0x0b0,
  SHM_LEN_HIGH: 0x0b4,
  SHM_BASE_LOW: 0x0b8,
  SHM_BASE_HIGH: 0x0bc,
  CONFIG_GENERATION: 0x0fc,
  CONFIG: 0x100,
} as const;

/** "virt" in little endian. */
export const MMIO_MAGIC = 0x74726976;
/** 4.2.2: version 2 is the modern (virtio 1.x) MMIO interface; vmctr has no legacy one. */
export const MMIO_VERSION = 2;
/** "VMCT": our vendor id. */
export const MMIO_VENDOR_ID = 0x54434d56;

/** 4.2.2: InterruptStatus bits. */
export const Interrupt = { USED_BUFFER: 1, CONFIG_CHANGE: 2 } as const;

/** 5.1.3 Network device feature bits (bit numbers). */
export const NetFeature = {
  CSUM: 0,
  GUEST_CSUM: 1,
  MAC: 5,
  GUEST_TSO4: 7,
  GUEST_TSO6: 8,
  GUEST_ECN: 9,
  HOST_TSO4: 11,
  HOST_TSO6: 12,
  HOST_ECN: 13,
  MRG_RXBUF: 15,
  STATUS: 16,
} as const;

/** 5.1.4 Network device configuration: `status` bits. */
export const NET_S_LINK_UP = 1;
/** 5.1.6: struct virtio_net_hdr with num_buffers, the header of every packet once VERSION_1 is negotiated. */
export const NET_HEADER_SIZE = 12;
