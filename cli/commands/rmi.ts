import { Args } from '@oclif/core';
import { ImageCommand, storeFlags } from '../../image/cli-command.js';
import { collectGarbage } from '../../image/garbage.js';
import { ImageError } from '../../image/image-error.js';
import { formatBytes } from '../../image/human-units.js';
import { matchImages } from '../../image/image-lookup.js';
import { sameName } from '../../image/store.js';

export default class Rmi extends ImageCommand {
  static override summary = 'Remove images by name or id, and the content no other image uses';
  static override strict = false;
  static override args = { image: Args.string({ required: true, description: 'image reference or id (prefix); several may be given' }) };
  static override flags = { ...storeFlags };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Rmi);
    const store = await this.openStore(flags.root);
    // All names are checked before any is removed: bad input changes nothing.
    const removed = await store.updateImages((images) => {
      const doomed = (argv as string[]).map((name) => {
        const matches = matchImages(images, name);
        if (matches.length === 0) throw new ImageError(`image "${name}" is not in the store`);
        return matches;
      }).flat();
      for (const image of doomed) {
        const at = images.findIndex((existing) => sameName(existing, image));
        if (at >= 0) images.splice(at, 1);
      }
      return doomed;
    });
    for (const image of removed) this.log(`Untagged: ${image.repository ?? '<none>'}${image.tag ? `:${image.tag}` : `@${image.digest}`}`);
    const collected = await collectGarbage(store);
    this.log(`Deleted: ${collected.blobs} blobs, ${collected.snapshots} snapshots, ${collected.disks} disks (${formatBytes(collected.bytes)})`);
  }
}
