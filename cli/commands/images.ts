import { Flags } from '@oclif/core';
import { ImageCommand, storeFlags } from '../../image/cli-command.js';
import { shortDigest } from '../../image/digest.js';
import { formatAge, formatBytes } from '../../image/human-units.js';
import type { ImageRecord } from '../../image/store.js';
import { table } from '../table.js';

// docker's familiar names: nginx rather than docker.io/library/nginx.
function displayName(repository: string | null): string {
  if (repository === null) return '<none>';
  if (repository.startsWith('docker.io/library/')) return repository.slice('docker.io/library/'.length);
  if (repository.startsWith('docker.io/')) return repository.slice('docker.io/'.length);
  return repository;
}

export default class Images extends ImageCommand {
  static override summary = 'List the images in the store';
  static override flags = {
    ...storeFlags,
    quiet: Flags.boolean({ char: 'q', description: 'print only image ids' }),
    'no-trunc': Flags.boolean({ description: 'print full digests and ids' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Images);
    const store = await this.openStore(flags.root);
    const images = [...(await store.images())].sort((a, b) => (b.created ?? '').localeCompare(a.created ?? ''));
    const id = (image: ImageRecord) => (flags['no-trunc'] ? image.config : shortDigest(image.config));
    if (flags.quiet) {
      for (const image of new Set(images.map(id))) this.log(image);
      return;
    }
    const rows = [['REPOSITORY', 'TAG', 'DIGEST', 'IMAGE ID', 'SIZE', 'CREATED']];
    for (const image of images) {
      rows.push([
        displayName(image.repository),
        image.tag ?? '<none>',
        flags['no-trunc'] ? image.digest : `sha256:${shortDigest(image.digest)}`,
        id(image),
        formatBytes(image.size),
        image.created ? formatAge(new Date(image.created)) : 'N/A',
      ]);
    }
    this.log(table(rows));
  }
}
