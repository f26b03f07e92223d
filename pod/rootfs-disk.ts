/**
 * Turns a container's root filesystem (a directory, or a tar archive of one)
 * into an ext4 disk image. A block device is the fast path for a container
 * rootfs in a microVM: the guest mounts it directly instead of going through
 * a file-sharing protocol, and the guest agent overlays a tmpfs on it, so the
 * image (and the source it came from) never changes.
 *
 * mke2fs -d copies a directory with its owners, modes (setuid included),
 * symlinks, hard links and extended attributes; it takes no tar (e2fsprogs
 * 1.47.0), so a tar is first extracted next to the disk. Extraction reuses the
 * image layer applier: the tar package's own extractor rewrites absolute and
 * climbing symlink targets, which are legitimate in a root filesystem (they
 * resolve inside the container), while the applier keeps them verbatim and
 * still writes nothing outside the directory. The applier (and the tar
 * package) is loaded only for a tar: a directory needs none of it.
 */
import { chmod, lstat, mkdtemp, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ImageError } from '../image/image-error.js';

/** A failure the user can act on; the message is one line. */
export class RootfsError extends Error {
  override name = 'RootfsError';
  constructor(message: string) {
    super(message.replace(/\s*\n\s*/g, ' ').trim());
  }
}

const BLOCK = 4096;
const INODE_SIZE = 256;

/** Builds the ext4 image `diskPath` (via `diskPath.tmp` and a rename) from a directory or a tar, tar.gz or tar.zst file. */
export async function buildRootfsDisk(source: string, diskPath: string): Promise<void> {
  const kind = await sourceKind(source);
  const tmp = `${diskPath}.tmp`;
  await rm(tmp, { force: true });
  let extracted: string | undefined;
  try {
    let directory = source;
    if (kind === 'tar') directory = extracted = await extractTar(source, diskPath);
    const { blocks, inodes } = await measure(directory);
    await mke2fs(directory, tmp, blocks, inodes);
    await rename(tmp, diskPath);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error instanceof RootfsError ? error : new RootfsError(`cannot build ${diskPath} from ${source}: ${(error as Error).message}`);
  } finally {
    if (extracted !== undefined) await rm(extracted, { recursive: true, force: true });
  }
}

/** Decided by what the source is, not by its name: a directory, or a file starting like a (compressed) tar. */
export async function sourceKind(source: string): Promise<'directory' | 'tar'> {
  const stats = await stat(source).catch(() => undefined);
  if (stats === undefined) throw new RootfsError(`rootfs source ${source} does not exist`);
  if (stats.isDirectory()) return 'directory';
  if (stats.isFile()) {
    const file = await open(source, 'r');
    try {
      const { buffer, bytesRead } = await file.read(Buffer.alloc(512), 0, 512, 0);
      const gzip = buffer[0] === 0x1f && buffer[1] === 0x8b;
      const zstd = buffer.readUInt32LE(0) === 0xfd2fb528;
      const ustar = bytesRead === 512 && buffer.toString('latin1', 257, 262) === 'ustar';
      if (gzip || zstd || ustar) return 'tar';
    } finally {
      await file.close();
    }
  }
  throw new RootfsError(`rootfs source ${source} is neither a directory nor a tar archive`);
}

// Into a fresh directory beside `path` (a disk to build, or the pod's own
// copy: same file system, usually roomy), with owners kept: that needs root,
// and a root filesystem with the wrong owners is worse than none.
export async function extractTar(source: string, path: string): Promise<string> {
  if (process.getuid?.() !== 0) throw new RootfsError(`cannot extract ${source} with its files' owners: a root filesystem from a tar needs root`);
  const directory = await mkdtemp(join(dirname(path), `.${basename(path)}.rootfs-`));
  try {
    await chmod(directory, 0o755); // unless the archive has an entry for its root
    const { applyLayer, DirectoryMetadataLog } = await import('../image/layer-apply.js');
    const directories = new DirectoryMetadataLog();
    await applyLayer(source, directory, { what: source, directories, warn: () => {} });
    await directories.apply();
    return directory;
  } catch (error) {
    await rm(directory, { recursive: true, force: true });
    if (error instanceof ImageError) throw new RootfsError(error.message);
    throw error;
  }
}

/** Blocks the content needs (4 KiB each, hard links counted once) and its inode count. */
async function measure(root: string): Promise<{ blocks: number; inodes: number }> {
  const seen = new Set<string>();
  let blocks = 0;
  let inodes = 0;
  const walk = async (directory: string): Promise<void> => {
    const names = await readdir(directory);
    // A directory entry costs 8 bytes plus its name, padded to 4.
    blocks += Math.max(1, Math.ceil(names.reduce((sum, name) => sum + 12 + name.length, 24) / BLOCK));
    inodes++;
    for (const name of names) {
      const path = join(directory, name);
      const stats = await lstat(path);
      if (stats.isDirectory()) {
        await walk(path);
        continue;
      }
      const id = `${stats.dev}:${stats.ino}`;
      if (seen.has(id)) continue;
      if (stats.nlink > 1) seen.add(id);
      inodes++;
      // Symlink targets under 60 bytes live in the inode itself.
      if (stats.isFile() || (stats.isSymbolicLink() && stats.size >= 60)) blocks += Math.ceil(stats.size / BLOCK);
    }
  };
  await walk(root);
  return { blocks, inodes };
}

async function mke2fs(directory: string, image: string, contentBlocks: number, contentInodes: number): Promise<void> {
  // Headroom: a tenth more inodes and blocks (directory indexes, extent trees),
  // plus the inode tables and 4 MiB for superblocks, descriptors and bitmaps.
  // The file is sparse, so unused room costs nothing on the host.
  const inodes = Math.ceil(contentInodes * 1.1) + 64;
  const bytes = Math.ceil(contentBlocks * 1.1) * BLOCK + inodes * INODE_SIZE + (4 << 20);
  const kib = Math.ceil(bytes / (1 << 20)) * 1024;
  const args = ['-q', '-t', 'ext4', '-b', String(BLOCK), '-I', String(INODE_SIZE), '-N', String(inodes), '-m', '0', '-O', '^has_journal,^resize_inode', '-d', directory, image, `${kib}K`];
  const { code, stderr } = await runE2fsprogs('mke2fs', args);
  if (code !== 0) {
    const first = stderr.split('\n').find((line) => line.trim() !== '') ?? `exit status ${code}`;
    throw new RootfsError(`mke2fs failed building ${image} from ${directory}: ${first.trim()}`);
  }
}

/**
 * Runs an e2fsprogs tool (mke2fs, debugfs) to its end: its exit status and
 * stderr; a tool that cannot run at all is a one-line RootfsError.
 */
export async function runE2fsprogs(tool: string, args: readonly string[]): Promise<{ code: number | null; stderr: string }> {
  // Debian keeps e2fsprogs in /usr/sbin, which a non-root PATH lacks.
  const env = { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` };
  // Loaded here, not imported: `vmctr run` imports this module, and the default image needs no disk built before its guest runs.
  const { spawn } = process.getBuiltinModule('node:child_process');
  return new Promise((resolve, reject) => {
    const child = spawn(tool, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', (error: NodeJS.ErrnoException) =>
      reject(new RootfsError(error.code === 'ENOENT' ? `${tool} is not installed: apt-get install e2fsprogs` : `cannot run ${tool}: ${error.message}`)));
    child.on('close', (code) => resolve({ code, stderr }));
  });
}
