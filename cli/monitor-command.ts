/** The hidden command under which `vmctr run` spawns a pod's monitor (main.ts runs it; it is no user command). */
export const MONITOR_COMMAND = '__monitor';
