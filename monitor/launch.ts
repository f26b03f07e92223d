// What a monitor is to run: launch.json in the pod's directory, written by
// the `vmctr run` that created the pod and read once by the monitor it
// spawns. Paths are resolved by the CLI (its working directory, its
// environment), so the monitor depends on neither.
import { readFile } from 'node:fs/promises';
import type { PodNetworkConfig } from '../net/pod-network.js';
import type { AppSpec } from '../pod/pod-spec.js';
import type { RootfsMode } from '../pod/rootfs-source.js';
import type { VolumeSpec } from '../pod/volume-spec.js';
import type { TtySize } from './protocol.js';

/** An app as the pod spec has it; a directory or tar named by `image` is an absolute path here. */
export type LaunchApp = AppSpec;

export interface PodLaunch {
  apps: LaunchApp[];
  /** The pod ends when the first app fails, not when the last one ends. */
  exitOnFirst: boolean;
  cpus: number;
  memoryMiB: number;
  /** How the apps' images reach the guest (--rootfs). */
  rootfs: RootfsMode;
  /** The size of the pod's writable layer (pod/layer-disk.ts). */
  layerBytes: number;
  hostname: string;
  /** The first app's stdin is open for an attached client. */
  stdin: boolean;
  /** The first app runs on a terminal of this size. */
  tty?: TtySize;
  /** Remove the pod once it has ended. */
  rm: boolean;
  /** A foreground `vmctr run` owns the pod: the apps wait for it to attach, and its disappearance ends the pod. */
  foreground: boolean;
  /** The pod's volumes, host sources resolved; the apps' mounts name them. */
  volumes: VolumeSpec[];
  /** vmctr's state directory. */
  root: string;
  /** The pod's network as the host side attached it; none with --net none. */
  network?: PodNetworkConfig;
  kernel: string;
  agentImage: string;
  /** --insecure-options=image: kernel and agent image are not checked against their stage1 manifests. */
  insecureImage: boolean;
  defaultImage: string;
}

export async function readLaunch(path: string): Promise<PodLaunch> {
  return JSON.parse(await readFile(path, 'utf8')) as PodLaunch;
}
