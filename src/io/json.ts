/** JSON text as every reader takes it: a size cap and a nesting cap before JSON.parse (browser-safe: no node imports). */
import { VitkitError } from '../errors.js';

const MAX_JSON_CHARS = 64 << 20;
/** deeper JSON than any config or tokenizer file has; a 200,000-deep array would overflow the recursive walkers after JSON.parse */
export const MAX_JSON_DEPTH = 256;

/**
 * Refuse JSON text nested deeper than `max` levels of [ and { (strings skipped), in one pass before
 * JSON.parse: the parser copes, but every recursive walk of the result (copying, validating,
 * stringifying) would die with "Maximum call stack size exceeded".
 */
export function checkJsonDepth(text: string, file: string, max = MAX_JSON_DEPTH): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) throw new VitkitError(`Expected ${file} nested at most ${max} levels deep but it goes deeper (at character ${i})`);
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
}

/** JSON text -> any JSON value, after the size and depth checks, or a one-line VitkitError naming the file. */
export function parseJsonText(text: string, file: string): unknown {
  if (text.length > MAX_JSON_CHARS) throw new VitkitError(`Expected ${file} of at most ${MAX_JSON_CHARS} characters but received ${text.length}`);
  checkJsonDepth(text, file);
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new VitkitError(`${file} is not valid JSON (${(e as Error).message})`);
  }
}

