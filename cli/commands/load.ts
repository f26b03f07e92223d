import { Flags } from '@oclif/core';
import { ImageCommand, storeFlags } from '../../image/cli-command.js';
import { loadImages } from '../../image/load.js';
import { ImageError } from '../../image/image-error.js';
import { parsePlatform } from '../../image/platform.js';
import { progressTo, quietProgress } from '../../image/progress.js';
import { parseReference } from '../../image/reference.js';

export default class Load extends ImageCommand {
  static override summary = 'Load images from a docker-save tar or an OCI image layout (directory or tar)';
  static override examples = ['docker save nginx | vmctr load', 'vmctr load -i nginx.tar', 'vmctr load -i ./oci-layout-dir --tag myapp:1'];
  static override flags = {
    ...storeFlags,
    input: Flags.string({ char: 'i', description: 'archive file or OCI layout directory (default: standard input)' }),
    tag: Flags.string({ description: 'name to give the loaded image (for layouts that carry no name)' }),
    platform: Flags.string({ description: 'os/arch[/variant] to pick from a multi-platform layout (default linux/amd64)' }),
    quiet: Flags.boolean({ char: 'q', description: 'print nothing but errors' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Load);
    if (flags.input === undefined && process.stdin.isTTY) throw new ImageError('no archive given: use -i FILE or pipe one to standard input');
    const store = await this.openStore(flags.root);
    const records = await loadImages(store, flags.input, {
      ...(flags.tag ? { tag: parseReference(flags.tag) } : {}),
      ...(flags.platform ? { platform: parsePlatform(flags.platform) } : {}),
      progress: flags.quiet ? quietProgress : progressTo(process.stderr),
    });
    if (flags.quiet) return;
    for (const record of records) {
      this.log(record.repository ? `Loaded image: ${record.repository}${record.tag ? `:${record.tag}` : `@${record.digest}`}` : `Loaded image ID: ${record.config}`);
    }
  }
}
