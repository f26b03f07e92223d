// A networking failure the user can act on (a bad or taken subnet, address
// or port, an exhausted network, a network in use): one line, which the CLI
// prints as it is. Other errors are vmctr's or the host's.
export class NetworkError extends Error {}
