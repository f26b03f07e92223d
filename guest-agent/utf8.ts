/**
 * UTF-8 in plain TypeScript: QuickJS has neither Buffer nor TextEncoder, and
 * the frame code is shared by the agent and the host client. Both directions
 * behave as Node's Buffer does: a lone surrogate encodes as U+FFFD, and each
 * ill-formed byte sequence (maximal subpart, as the WHATWG decoder) decodes
 * as one U+FFFD, so text from a peer can never fail to decode.
 */

export function encodeUtf8(text: string): Uint8Array {
  // At most 3 bytes per UTF-16 code unit (a surrogate pair is 4 bytes for 2 units).
  const out = new Uint8Array(text.length * 3);
  let at = 0;
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = text.charCodeAt(i + 1);
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
        i++;
      } else {
        c = 0xfffd;
      }
    }
    if (c < 0x80) {
      out[at++] = c;
    } else if (c < 0x800) {
      out[at++] = 0xc0 | (c >> 6);
      out[at++] = 0x80 | (c & 0x3f);
    } else if (c < 0x10000) {
      out[at++] = 0xe0 | (c >> 12);
      out[at++] = 0x80 | ((c >> 6) & 0x3f);
      out[at++] = 0x80 | (c & 0x3f);
    } else {
      out[at++] = 0xf0 | (c >> 18);
      out[at++] = 0x80 | ((c >> 12) & 0x3f);
      out[at++] = 0x80 | ((c >> 6) & 0x3f);
      out[at++] = 0x80 | (c & 0x3f);
    }
  }
  return out.subarray(0, at);
}

/** Code units gathered before each String.fromCharCode call: bounded, as its argument count is. */
const FLUSH_UNITS = 8192;

export function decodeUtf8(bytes: Uint8Array): string {
  const parts: string[] = [];
  const units: number[] = [];
  const emit = (c: number): void => {
    if (c >= 0x10000) {
      c -= 0x10000;
      units.push(0xd800 + (c >> 10), 0xdc00 + (c & 0x3ff));
    } else {
      units.push(c);
    }
    if (units.length >= FLUSH_UNITS) parts.push(String.fromCharCode(...units.splice(0)));
  };
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i]!;
    if (b < 0x80) {
      emit(b);
      i++;
      continue;
    }
    // The sequence length and the allowed range of the second byte (Unicode table 3-7).
    let need: number, low = 0x80, high = 0xbf, c: number;
    if (b >= 0xc2 && b <= 0xdf) { need = 1; c = b & 0x1f; }
    else if (b >= 0xe0 && b <= 0xef) { need = 2; c = b & 0x0f; if (b === 0xe0) low = 0xa0; if (b === 0xed) high = 0x9f; }
    else if (b >= 0xf0 && b <= 0xf4) { need = 3; c = b & 0x07; if (b === 0xf0) low = 0x90; if (b === 0xf4) high = 0x8f; }
    else {
      emit(0xfffd);
      i++;
      continue;
    }
    let j = i + 1;
    for (; need > 0; need--, j++) {
      const next = bytes[j];
      if (next === undefined || next < low || next > high) break;
      c = (c << 6) | (next & 0x3f);
      low = 0x80;
      high = 0xbf;
    }
    // A complete sequence, or one U+FFFD for the valid prefix that broke off.
    emit(need === 0 ? c : 0xfffd);
    i = j;
  }
  parts.push(String.fromCharCode(...units));
  return parts.join('');
}
