// virtio-console control messages (virtio 1.2, 5.3.6.2): how the device
// announces ports, names them, marks the console, and opens them.

/** struct virtio_console_control: le32 id, le16 event, le16 value. */
export const CONTROL_HEADER_SIZE = 8;

export const ControlEvent = {
  DEVICE_READY: 0,
  DEVICE_ADD: 1,
  DEVICE_REMOVE: 2,
  PORT_READY: 3,
  CONSOLE_PORT: 4,
  RESIZE: 5,
  PORT_OPEN: 6,
  PORT_NAME: 7,
} as const;

export interface ControlMessage {
  id: number;
  event: number;
  value: number;
}

export function encodeControl(msg: ControlMessage, payload?: Uint8Array): Uint8Array {
  const out = new Uint8Array(CONTROL_HEADER_SIZE + (payload?.byteLength ?? 0));
  const v = new DataView(out.buffer);
  v.setUint32(0, msg.id, true);
  v.setUint16(4, msg.event, true);
  v.setUint16(6, msg.value, true);
  if (payload) out.set(payload, CONTROL_HEADER_SIZE);
  return out;
}

export function decodeControl(bytes: Uint8Array): ControlMessage | undefined {
  if (bytes.byteLength < CONTROL_HEADER_SIZE) return undefined;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { id: v.getUint32(0, true), event: v.getUint16(4, true), value: v.getUint16(6, true) };
}
