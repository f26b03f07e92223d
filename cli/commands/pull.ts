import { Args, Flags } from '@oclif/core';
import { ImageCommand, insecureRegistries, registryFlags, storeFlags } from '../../image/cli-command.js';
import { parsePlatform } from '../../image/platform.js';
import { progressTo, quietProgress } from '../../image/progress.js';
import { pullImage } from '../../image/pull.js';
import { formatReference, parseReference } from '../../image/reference.js';
import { RegistrySession } from '../../image/registry-client.js';

export default class Pull extends ImageCommand {
  static override summary = 'Pull an image from a registry into the store, verified and unpacked';
  static override examples = ['vmctr pull docker.io/library/nginx:1.25', 'vmctr pull --platform linux/arm64 alpine', 'vmctr pull --insecure-registry 127.0.0.1:5000 127.0.0.1:5000/app@sha256:…'];
  static override args = { image: Args.string({ required: true, description: 'image reference: [registry/]repository[:tag][@digest]' }) };
  static override flags = {
    ...storeFlags,
    ...registryFlags,
    platform: Flags.string({ description: 'os/arch[/variant] to pull from a multi-platform image (default linux/amd64)' }),
    quiet: Flags.boolean({ char: 'q', description: 'print only the image name' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Pull);
    const reference = parseReference(args.image);
    const platform = flags.platform === undefined ? undefined : parsePlatform(flags.platform);
    const store = await this.openStore(flags.root);
    const session = new RegistrySession({ insecureRegistries: insecureRegistries(flags['insecure-registry']) });
    try {
      const image = await pullImage(store, reference, {
        session,
        ...(platform ? { platform } : {}),
        progress: flags.quiet ? quietProgress : progressTo(process.stderr),
      });
      this.log(flags.quiet ? formatReference(reference) : `${formatReference(reference)}: pulled ${image.platform} image ${image.config} (manifest ${image.manifest})`);
    } finally {
      await session.close();
    }
  }
}
