// A minimal, defensive reader of 64-bit little-endian ELF executables:
// the loadable segments and the notes (for the PVH entry point). It reads
// only the headers and notes of the image; segments are loaded later,
// straight into guest memory.
import { readImage, type BootImage } from './boot-image.js';

export class ElfError extends Error {}

export interface ElfSegment {
  paddr: number;
  fileOffset: number;
  fileSize: number;
  memSize: number;
}

export interface ElfNote {
  name: string;
  type: number;
  desc: Uint8Array;
}

export interface ElfImage {
  entry: number;
  segments: ElfSegment[];
  notes: ElfNote[];
}

const PT_LOAD = 1;
const PT_NOTE = 4;
const EM_X86_64 = 62;
const ET_EXEC = 2;
const ELF_HEADER_SIZE = 64;

/** Parses and range-checks an ELF64 x86-64 executable. */
export function parseElf(file: BootImage): ElfImage {
  if (file.byteLength < ELF_HEADER_SIZE) throw new ElfError('not an ELF file');
  const header = readImage(file, 0, ELF_HEADER_SIZE);
  const v = new DataView(header.buffer);
  if (v.getUint32(0) !== 0x7f454c46) throw new ElfError('not an ELF file');
  if (header[4] !== 2 || header[5] !== 1) throw new ElfError('not a 64-bit little-endian ELF file');
  if (v.getUint16(16, true) !== ET_EXEC || v.getUint16(18, true) !== EM_X86_64) throw new ElfError('not an x86-64 executable (use the uncompressed vmlinux)');
  const entry = Number(v.getBigUint64(24, true));
  const phoff = Number(v.getBigUint64(32, true));
  const phentsize = v.getUint16(54, true);
  const phnum = v.getUint16(56, true);
  if (phentsize < 56 || phoff + phnum * phentsize > file.byteLength) throw new ElfError('program headers lie outside the file (truncated?)');
  const ph = new DataView(readImage(file, phoff, phnum * phentsize).buffer);

  const segments: ElfSegment[] = [];
  const notes: ElfNote[] = [];
  for (let i = 0; i < phnum; i++) {
    const p = i * phentsize;
    const type = ph.getUint32(p, true);
    const offset = Number(ph.getBigUint64(p + 8, true));
    const paddr = Number(ph.getBigUint64(p + 24, true));
    const fileSize = Number(ph.getBigUint64(p + 32, true));
    const memSize = Number(ph.getBigUint64(p + 40, true));
    if (type !== PT_LOAD && type !== PT_NOTE) continue;
    if (offset + fileSize > file.byteLength) throw new ElfError(`segment ${i} lies outside the file (truncated?)`);
    if (type === PT_LOAD) {
      if (fileSize > memSize) throw new ElfError(`segment ${i} has more file bytes than memory bytes`);
      segments.push({ paddr, fileOffset: offset, fileSize, memSize });
    } else {
      notes.push(...parseNotes(readImage(file, offset, fileSize)));
    }
  }
  if (segments.length === 0) throw new ElfError('no loadable segments');
  return { entry, segments, notes };
}

function parseNotes(bytes: Uint8Array): ElfNote[] {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // Arithmetic, not `(n + 3) & ~3`: the bitwise form wraps at 2^31, and a note size
  // of 0xfffffff4 then aligns to -12, which walked the loop back onto itself forever.
  const align4 = (n: number) => Math.ceil(n / 4) * 4;
  const notes: ElfNote[] = [];
  let off = 0;
  while (off + 12 <= bytes.byteLength) {
    const namesz = v.getUint32(off, true);
    const descsz = v.getUint32(off + 4, true);
    const type = v.getUint32(off + 8, true);
    const nameStart = off + 12;
    const descStart = nameStart + align4(namesz);
    const next = descStart + align4(descsz);
    if (next > bytes.byteLength) throw new ElfError('malformed ELF note');
    const name = new TextDecoder().decode(bytes.subarray(nameStart, nameStart + Math.max(0, namesz - 1)));
    notes.push({ name, type, desc: bytes.subarray(descStart, descStart + descsz) });
    off = next;
  }
  return notes;
}
