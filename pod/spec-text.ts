// What the checks of a pod's description share (pod-spec.ts for its apps,
// volume-spec.ts for its volumes): the rule its names follow and how an
// error shows a value. A module of its own so that neither imports the other.

/** A name that is safe as a file name, a disk label, a directory of the pod's virtio-fs device and in messages, as rkt's app and volume names. */
export const SAFE_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;
export const SAFE_NAME_EXPECTED = 'a name of 1 to 63 letters, digits, "_", "." or "-", starting with a letter or digit';
export const SAFE_NAME_MAX = 63;

/** How much of a string an error shows: a value may be 64 KiB. */
const MAX_SHOWN = 60;

/** A string as messages show it: quoted, escaped onto one line, and cut short. */
export function shown(value: string): string {
  return JSON.stringify(value.length > MAX_SHOWN ? `${value.slice(0, MAX_SHOWN)}...` : value);
}
