// JSON text to values, for files people write by hand (a pod manifest).
// JSON.parse would do the parsing, but its errors are V8's own words, some
// without any position ("Unexpected end of JSON input"), and it keeps the
// last of two fields of the same name without a word. This reader says
// where every mistake is, by line and column, and refuses a repeated field.
// Objects become Maps: a field named "__proto__" is then a field like any
// other.

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export type JsonObject = Map<string, JsonValue>;

/** Deeper than any document this reader is for: bounds the recursion, so a hostile file cannot overflow the stack. */
export const MAX_JSON_DEPTH = 64;

/** A JSON syntax error at a 1-based line and column (in characters). */
export class JsonSyntaxError extends Error {
  override name = 'JsonSyntaxError';

  constructor(
    readonly reason: string,
    readonly line: number,
    readonly column: number,
  ) {
    super(`${line}:${column}: ${reason}`);
  }
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const WORD = /[A-Za-z_$][\w$]*/y;
const ESCAPES: Readonly<Record<string, string>> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
const BYTE_ORDER_MARK = '\uFEFF';

/** The value `text` holds (a byte-order mark at the start is allowed); a mistake is thrown as a JsonSyntaxError. */
export function readJson(text: string): JsonValue {
  let pos = text.startsWith(BYTE_ORDER_MARK) ? 1 : 0;

  const fail = (reason: string, at = pos): never => {
    const before = text.slice(0, at);
    const lineStart = before.lastIndexOf('\n') + 1;
    throw new JsonSyntaxError(reason, before.split('\n').length, [...before.slice(lineStart)].length + 1);
  };
  /** What is at `pos`, as an error message shows it. */
  const found = (): string => {
    if (pos >= text.length) return 'the end of the file';
    WORD.lastIndex = pos;
    const word = WORD.exec(text);
    return word ? word[0] : JSON.stringify(String.fromCodePoint(text.codePointAt(pos)!));
  };
  const skipSpace = () => {
    while (pos < text.length && ' \t\n\r'.includes(text[pos]!)) pos++;
  };
  const expect = (char: string, what: string) => {
    skipSpace();
    if (text[pos] !== char) fail(`expected ${what}, got ${found()}`);
    pos++;
  };

  const string = (): string => {
    const start = pos++;
    let value = '';
    for (;;) {
      if (pos >= text.length) fail('this string has no closing \'"\'', start);
      const char = text[pos]!;
      if (char === '"') break;
      if (char < ' ') fail(`expected a character, got the control character U+${char.charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()} (in a string, write it as an escape such as \\n or \\t)`);
      pos++;
      if (char !== '\\') {
        value += char;
        continue;
      }
      const escape = text[pos];
      if (escape !== undefined && Object.hasOwn(ESCAPES, escape)) {
        value += ESCAPES[escape];
        pos++;
      } else if (escape === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(pos + 1, pos + 5))) {
        value += String.fromCharCode(parseInt(text.slice(pos + 1, pos + 5), 16));
        pos += 5;
      } else {
        fail(`expected an escape (\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\u and 4 hex digits), got \\${escape === undefined ? '' : escape}`, pos - 1);
      }
    }
    pos++;
    return value;
  };

  /** The items of an array or the fields of an object, after its opening bracket: `item` reads one. */
  const items = (close: string, item: () => void) => {
    skipSpace();
    if (text[pos] === close) {
      pos++;
      return;
    }
    for (;;) {
      item();
      skipSpace();
      if (text[pos] === close) {
        pos++;
        return;
      }
      expect(',', `"," or "${close}"`);
      skipSpace();
      if (text[pos] === close) fail(`expected another item after ",", got "${close}" (JSON has no trailing commas)`);
    }
  };

  const value = (depth: number): JsonValue => {
    skipSpace();
    const char = text[pos];
    if ((char === '[' || char === '{') && depth >= MAX_JSON_DEPTH) fail(`expected at most ${MAX_JSON_DEPTH} nested arrays and objects, got more`);
    if (char === '[') {
      pos++;
      const array: JsonValue[] = [];
      items(']', () => array.push(value(depth + 1)));
      return array;
    }
    if (char === '{') {
      pos++;
      const object: JsonObject = new Map();
      items('}', () => {
        skipSpace();
        const at = pos;
        if (text[pos] !== '"') fail(`expected a field name in double quotes, got ${found()}`);
        const key = string();
        if (object.has(key)) fail(`field ${JSON.stringify(key)} is given twice: give it once`, at);
        expect(':', `":" after the field name ${JSON.stringify(key)}`);
        object.set(key, value(depth + 1));
      });
      return object;
    }
    if (char === '"') return string();
    NUMBER.lastIndex = pos;
    const number = NUMBER.exec(text);
    if (number) {
      pos += number[0].length;
      return Number(number[0]);
    }
    for (const [word, literal] of [['true', true], ['false', false], ['null', null]] as const) {
      if (found() === word) {
        pos += word.length;
        return literal;
      }
    }
    return fail(`expected a value (an object, array, string, number, true, false or null), got ${found()}`);
  };

  const result = value(0);
  skipSpace();
  if (pos < text.length) fail(`expected the end of the file after the value, got ${found()}`);
  return result;
}
