import test from 'ava';
import { BytesImage } from '../../vmm/boot/boot-image.js';
import { ElfError, parseElf } from '../../vmm/boot/elf.js';
import { PRINT_CMDLINE_AND_REBOOT, syntheticKernel } from '../vmm/synthetic-kernel.js';

// Bugs the fuzz targets found, each pinned by the smallest input that showed it.

test('elf: a note whose name size wraps the 32-bit alignment is refused, not looped on forever (elf-pvh case 158)', (t) => {
  const kernel = syntheticKernel(PRINT_CMDLINE_AND_REBOOT);
  const note = 64 + 2 * 56;
  const v = new DataView(kernel.buffer);
  // (0xfffffff4 + 3) & ~3 is -12 in int32: the next note started where this one did.
  v.setUint32(note, 0xfffffff4, true);
  v.setUint32(note + 4, 0, true);
  t.throws(() => parseElf(new BytesImage(kernel)), { instanceOf: ElfError, message: /malformed ELF note/ });
});
