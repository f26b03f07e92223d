// The files of a read-only ext4 disk as a directory beside it, for a pod
// whose root filesystem is served over virtio-fs (--rootfs fs) from an image
// that exists only as a disk: the built-in default image. Made once, by
// debugfs (no mount, no loop device), which keeps owners, modes and links as
// the disk has them when it runs as root; into a private name, then renamed,
// so concurrent first runs each make a whole copy and the last rename wins.
import { mkdtemp, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { RootfsError, runE2fsprogs } from './rootfs-disk.js';

/** The directory beside `disk` holding its files, made on first use. */
export async function diskDirectory(disk: string, progress: (line: string) => void): Promise<string> {
  const directory = join(dirname(disk), `${basename(disk)}.d`);
  if (await stat(directory).then((s) => s.isDirectory(), () => false)) return directory;
  if (process.getuid?.() !== 0) throw new RootfsError(`cannot copy ${disk}'s files with their owners: serving the image over virtio-fs needs root`);
  progress(`vmctr: copying the files of ${disk} for --rootfs fs (once per image)`);
  const partial = await mkdtemp(`${directory}.tmp-`);
  try {
    await debugfs(['-R', `rdump / ${partial}`, disk]);
    await rm(join(partial, 'lost+found'), { recursive: true, force: true });
    await rename(partial, directory).catch(async (err: NodeJS.ErrnoException) => {
      // Another run renamed its copy first: use that one.
      if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
    });
  } catch (err) {
    throw err instanceof RootfsError ? err : new RootfsError(`cannot copy the files of ${disk}: ${(err as Error).message}`);
  } finally {
    await rm(partial, { recursive: true, force: true });
  }
  return directory;
}

/** Runs debugfs, which reports a failed request on stderr and still exits 0: any line but its banner is a failure. */
async function debugfs(args: string[]): Promise<void> {
  const { code, stderr } = await runE2fsprogs('debugfs', args);
  const complaint = stderr.split('\n').map((l) => l.trim()).find((l) => l && !/^debugfs \d/.test(l));
  if (code !== 0 || complaint) throw new RootfsError(`debugfs ${args.join(' ')}: ${complaint ?? `exit status ${code}`}`);
}
