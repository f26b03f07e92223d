/**
 * The host-agent protocol, version 1: message types, their fields and the
 * limits both sides enforce. PROTOCOL.md is the prose description; this file
 * is the single source both the agent and the host client compile against.
 */

export const PROTOCOL_VERSION = 1;
/** 0.3.0: a start may join a running container (`rootfs: {container}`). 0.4.0: an image on the pod's virtio-fs device (`rootfs: {share}`). */
export const AGENT_VERSION = '0.4.0';

/** The virtio-console port (multiport) the agent serves on. */
export const PORT_NAME = 'vmctr.agent';

/** Frame type codes (the byte after the length). Hello's code and `protocol` field never change. */
export const MessageType = {
  hello: 0x01,
  start: 0x02,
  started: 0x03,
  stdin: 0x04,
  stdout: 0x05,
  stderr: 0x06,
  stdinClose: 0x07,
  credit: 0x08,
  resize: 0x09,
  signal: 0x0a,
  exit: 0x0b,
  error: 0x0c,
  shutdown: 0x0d,
  bye: 0x0e,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

export const DATA_TYPES: ReadonlySet<number> = new Set([MessageType.stdin, MessageType.stdout, MessageType.stderr]);
export type DataStream = 'stdin' | 'stdout' | 'stderr';

/** Largest frame (type byte and body): far above a real start message, so a larger length means the stream is out of step. */
export const MAX_FRAME = 4 * 1024 * 1024;
/** Largest payload of one stdio data frame. */
export const MAX_DATA = 64 * 1024;
/** Bytes a sender may have in flight per stdio stream before the receiver grants more. */
export const INITIAL_CREDIT = 256 * 1024;
/** A receiver returns credit in batches of at least this many bytes (or when a stream ends). */
export const CREDIT_BATCH = 64 * 1024;

export interface Hello {
  protocol: number;
  agent: string;
  kernel: string;
  /** The JavaScript engine running the agent (the field's name dates from the Node agent). */
  node: string;
  /** Guest uptime in seconds when the hello was sent (from /proc/uptime). */
  uptime: number;
  /** Milliseconds from the agent process starting to this hello. */
  agentStartMs: number;
}

export type RootfsSpec =
  /** A block device mounted read-only, with an overlay on top: its upper layer on `layer`, or a tmpfs. */
  | { device: string; fstype: string; layer?: LayerSpec }
  /** A directory `share` of the pod's virtio-fs device (the image, served read-only by the host) under an overlay, as for a device. */
  | { share: string; layer?: LayerSpec }
  /** An existing directory as the lower layer (tests; shared directories), with a tmpfs overlay on top. */
  | { directory: string };

/** The pod's writable layer: a block device shared by its apps, each with its own `directory` on it for its overlay's upper layer. */
export interface LayerSpec {
  device: string;
  fstype: string;
  directory: string;
}

/** The root of a running container, joined as it is (an exec): the host id of the start that mounted it. */
export interface JoinedRootfs {
  container: number;
}

export interface Rlimit {
  type: string;
  soft: number | 'unlimited';
  hard: number | 'unlimited';
}

/** A pod volume in a container: the directory `name` of the pod's virtio-fs device, bound onto `target`. */
export interface VolumeMount {
  name: string;
  /** Absolute, in the container. */
  target: string;
  readOnly: boolean;
}

export interface ContainerSpec {
  rootfs: RootfsSpec | JoinedRootfs;
  /** Not with a joined rootfs: the process has its container's. */
  hostname?: string;
  /** A networked pod's name resolution, written to the container's /etc/resolv.conf and /etc/hosts; not with a joined rootfs. */
  network?: { resolvConf: string; hosts: string };
  /** The pod volumes the container mounts; not with a joined rootfs. */
  volumes?: VolumeMount[];
  /** argv; args[0] is looked up in the container's PATH. */
  args: string[];
  /** "KEY=value" entries, as in an OCI image config. */
  env?: string[];
  /** Absolute; created if missing. Default "/". */
  cwd?: string;
  /** "user", "uid", "user:group", "uid:gid"...: names resolved in the container's /etc/passwd and /etc/group. Default root. */
  user?: string;
  /** Extra supplementary groups, by name or id. */
  additionalGroups?: string[];
  stdin?: boolean;
  /** Allocate a pty of this size; stdout carries the terminal, stderr stays empty. */
  tty?: { rows: number; cols: number };
  rlimits?: Rlimit[];
}

export interface StartMessage extends ContainerSpec {
  id: number;
}

export type ExitStatus = { code: number } | { signal: number };

export type ControlMessage =
  | { type: typeof MessageType.hello; body: Hello }
  | { type: typeof MessageType.start; body: StartMessage }
  | { type: typeof MessageType.started; body: { id: number; pid: number } }
  | { type: typeof MessageType.stdinClose; body: { id: number } }
  | { type: typeof MessageType.credit; body: { id: number; stream: DataStream; bytes: number } }
  | { type: typeof MessageType.resize; body: { id: number; rows: number; cols: number } }
  | { type: typeof MessageType.signal; body: { id: number; signal: number } }
  | { type: typeof MessageType.exit; body: { id: number } & ExitStatus }
  | { type: typeof MessageType.error; body: { id?: number; code: number; message: string } }
  | { type: typeof MessageType.shutdown; body: Record<string, never> }
  | { type: typeof MessageType.bye; body: Record<string, never> };

export interface DataMessage {
  type: typeof MessageType.stdin | typeof MessageType.stdout | typeof MessageType.stderr;
  id: number;
  payload: Uint8Array;
}

export type Message = ControlMessage | DataMessage;

export function streamOfType(type: DataMessage['type']): DataStream {
  return type === MessageType.stdin ? 'stdin' : type === MessageType.stdout ? 'stdout' : 'stderr';
}

/** The error code of a set-up failure, as docker uses it (126 and 127, exec failures, come from vmctr-exec). */
export const SETUP_FAILURE = 125;
