import { Command, Errors, Flags, type Interfaces } from '@oclif/core';
import { oneLine } from './image-error.js';
import { exitOnSignals } from './exit-cleanup.js';
import { ImageStore, storeRoot } from './store.js';

/** Flags every image command takes. */
export const storeFlags = {
  root: Flags.string({ description: 'vmctr state directory [env: VMCTR_ROOT] (default /var/lib/vmctr)', helpGroup: 'GLOBAL' }),
};

export const registryFlags = {
  'insecure-registry': Flags.string({
    description: 'registry (HOST[:PORT]) to reach over plain HTTP; repeatable [env: VMCTR_INSECURE_REGISTRIES, comma-separated]',
    multiple: true,
    multipleNonGreedy: true,
  }),
};

/** --insecure-registry values plus the environment's. */
export function insecureRegistries(flag: readonly string[] | undefined, env: NodeJS.ProcessEnv = process.env): string[] {
  const fromEnv = (env.VMCTR_INSECURE_REGISTRIES ?? '').split(/[\s,]+/).filter(Boolean);
  return [...(flag ?? []), ...fromEnv];
}

/**
 * Base of the image commands: any failure becomes one line on stderr
 * (`vmctr: …`) and exit status 1; Ctrl-C still runs the cleanup of temp
 * files, locks and pins.
 */
export abstract class ImageCommand extends Command {
  protected override async init(): Promise<void> {
    await super.init();
    exitOnSignals();
  }

  protected openStore(root: string | undefined): Promise<ImageStore> {
    return ImageStore.open(storeRoot(root));
  }

  protected override async catch(error: Interfaces.CommandError): Promise<void> {
    if (error instanceof Errors.ExitError) throw error;
    process.stderr.write(`vmctr: ${oneLine(error)}\n`);
    if (process.env.DEBUG) process.stderr.write(`${error.stack}\n`);
    this.exit(typeof error.oclif?.exit === 'number' && error.oclif.exit !== 0 ? error.oclif.exit : 1);
  }
}
