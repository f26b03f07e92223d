// A preload (`node --import`, or NODE_OPTIONS for a process started through
// bin/vmctr) that records every module the process loads, by URL, and
// writes them, one a line, to $VMCTR_MODULE_TRACE when it exits, however
// it exits. For tests of what a command loads; touches no production code.
import { writeFileSync } from 'node:fs';
import { registerHooks } from 'node:module';

const out = process.env.VMCTR_MODULE_TRACE;
if (!out) throw new Error('module-trace: set VMCTR_MODULE_TRACE to the file to write');
const loaded = new Set<string>();
registerHooks({
  load(url, context, nextLoad) {
    loaded.add(url);
    return nextLoad(url, context);
  },
});
process.on('exit', () => writeFileSync(out, [...loaded].join('\n') + '\n'));
