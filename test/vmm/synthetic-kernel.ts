// Builds a minimal ELF64 "kernel" with a PVH entry note around 32-bit code,
// so the boot path can be tested without Linux (and on a PVM host).

export const SYNTHETIC_LOAD_ADDR = 0x100000;

/**
 * PVH entry code: checks the hvm_start_info magic at [ebx], prints the
 * command line (start_info.cmdline_paddr) and a newline on COM1, then
 * resets through the i8042. A bad magic executes ud2 (a triple fault: no IDT).
 */
export const PRINT_CMDLINE_AND_REBOOT = [
  0x8b, 0x03, // mov eax, [ebx]
  0x3d, 0x78, 0xc5, 0x6e, 0x33, // cmp eax, 0x336ec578
  0x75, 0x19, // jne fail
  0x8b, 0x73, 0x18, // mov esi, [ebx+24]
  0x66, 0xba, 0xf8, 0x03, // mov dx, 0x3f8
  0x8a, 0x06, // L: mov al, [esi]
  0x84, 0xc0, // test al, al
  0x74, 0x04, // jz done
  0xee, // out dx, al
  0x46, // inc esi
  0xeb, 0xf6, // jmp L
  0xb0, 0x0a, // done: mov al, 10
  0xee, // out dx, al
  0xb0, 0xfe, // mov al, 0xfe
  0xe6, 0x64, // out 0x64, al
  0xf4, // hlt
  0x0f, 0x0b, // fail: ud2
];

/** ud2 right away: the guest triple-faults. */
export const CRASH = [0x0f, 0x0b];

/** ELF64 x86-64 executable: one PT_LOAD with `code` at SYNTHETIC_LOAD_ADDR, one PT_NOTE with the PVH entry. */
export function syntheticKernel(code: number[], opts: { pvhNote?: boolean } = {}): Uint8Array {
  const EHDR = 64, PHDR = 56;
  const phnum = opts.pvhNote === false ? 1 : 2;
  const noteOff = EHDR + phnum * PHDR;
  const note = new Uint8Array(12 + 4 + 8);
  const nv = new DataView(note.buffer);
  nv.setUint32(0, 4, true); // namesz "Xen\0"
  nv.setUint32(4, 8, true); // descsz
  nv.setUint32(8, 18, true); // XEN_ELFNOTE_PHYS32_ENTRY
  note.set([0x58, 0x65, 0x6e, 0], 12);
  nv.setBigUint64(16, BigInt(SYNTHETIC_LOAD_ADDR), true);
  const codeOff = noteOff + (phnum === 2 ? note.byteLength : 0);
  const file = new Uint8Array(codeOff + code.length);
  const v = new DataView(file.buffer);
  file.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  v.setUint16(16, 2, true); // ET_EXEC
  v.setUint16(18, 62, true); // EM_X86_64
  v.setUint32(20, 1, true);
  v.setBigUint64(24, BigInt(SYNTHETIC_LOAD_ADDR), true);
  v.setBigUint64(32, BigInt(EHDR), true); // phoff
  v.setUint16(52, EHDR, true);
  v.setUint16(54, PHDR, true);
  v.setUint16(56, phnum, true);
  const ph = (i: number, type: number, off: number, addr: number, size: number) => {
    const p = EHDR + i * PHDR;
    v.setUint32(p, type, true);
    v.setUint32(p + 4, 5, true); // R+X
    v.setBigUint64(p + 8, BigInt(off), true);
    v.setBigUint64(p + 16, BigInt(addr), true);
    v.setBigUint64(p + 24, BigInt(addr), true);
    v.setBigUint64(p + 32, BigInt(size), true);
    v.setBigUint64(p + 40, BigInt(size + 4096), true); // a little bss
    v.setBigUint64(p + 48, 4096n, true);
  };
  ph(0, 1, codeOff, SYNTHETIC_LOAD_ADDR, code.length);
  if (phnum === 2) {
    ph(1, 4, noteOff, 0, note.byteLength);
    v.setBigUint64(EHDR + PHDR + 40, BigInt(note.byteLength), true);
    file.set(note, noteOff);
  }
  file.set(code, codeOff);
  return file;
}
