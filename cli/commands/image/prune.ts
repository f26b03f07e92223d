import { ImageCommand, storeFlags } from '../../../image/cli-command.js';
import { collectGarbage } from '../../../image/garbage.js';
import { formatBytes } from '../../../image/human-units.js';

export default class ImagePrune extends ImageCommand {
  static override summary = 'Remove blobs and snapshots no image refers to, and leftovers of interrupted pulls';
  static override flags = { ...storeFlags };

  async run(): Promise<void> {
    const { flags } = await this.parse(ImagePrune);
    const store = await this.openStore(flags.root);
    const collected = await collectGarbage(store);
    this.log(`Deleted ${collected.blobs} blobs, ${collected.snapshots} snapshots, ${collected.disks} disks, ${collected.temporary} temporary files; reclaimed ${formatBytes(collected.bytes)}`);
  }
}
