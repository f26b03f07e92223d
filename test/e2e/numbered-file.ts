// Writes a file of N MiB for a round-trip test and prints its MD5: random
// bytes, each MiB numbered in its first four bytes, so a block lost,
// repeated or misplaced changes the sum. Fast where /dev/urandom is not (the
// lab's emulated CPUs): one random MiB, written N times.
//   node numbered-file.js PATH MIB
import { randomBytes, createHash } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';

const [path, mib] = [process.argv[2]!, Number(process.argv[3])];
const block = randomBytes(1 << 20);
const hash = createHash('md5');
const fd = openSync(path, 'w');
for (let i = 0; i < mib; i++) {
  block.writeUInt32LE(i, 0);
  writeSync(fd, block);
  hash.update(block);
}
closeSync(fd);
console.log(hash.digest('hex'));
