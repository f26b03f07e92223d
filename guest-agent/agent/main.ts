/**
 * The agent binary's entry (guest-agent/build-agent.sh bundles from here for
 * QuickJS). QuickJS reports neither an uncaught error in a promise nor an
 * unhandled rejection as fatal, so every path that can fail ends here.
 */
import { fatal, runAgent } from './agent.js';
import { QuickJsPlatform } from './quickjs-platform.js';

const platform = new QuickJsPlatform();
runAgent(platform, scriptArgs.slice(1)).catch((err: Error) => fatal(platform, err));
