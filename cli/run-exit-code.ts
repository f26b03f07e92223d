/** Exit codes of `vmctr run` that are not the container's own. */
export const RunExitCode = {
  /** vmctr could not start the pod: bad usage or input, missing set-up, a host without KVM (as docker's 125). */
  error: 125,
  /** The guest kernel panicked. */
  panic: 250,
  /** The VM or the agent failed: a guest crash, a VMM error, the agent channel lost. */
  failure: 251,
} as const;
