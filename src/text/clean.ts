/**
 * Text clean-up before BPE, as open_clip 2.24's tokenizer does it (`basic_clean`, `whitespace_clean`):
 *
 *   basic_clean(t)      = html.unescape(html.unescape(ftfy.fix_text(t))).strip()
 *   whitespace_clean(t) = re.sub(r'\s+', ' ', t).strip()
 *   clean 'lower'       = whitespace_clean(basic_clean(t)).lower()
 *
 * `htmlUnescape` is Python's `html.unescape` exactly (the full WHATWG named-reference table, numeric
 * references with the HTML5 replacement rules, the longest-prefix rule for legacy names without ";").
 *
 * `fixText` is ftfy 6.3's `fix_text` with its default configuration MINUS the encoding repair
 * (`fix_encoding`: mojibake detection and re-decoding, with its sub-steps `restore_byte_a0`,
 * `replace_lossy_sequences`, `decode_inconsistent_utf8`). Those are heuristics over "badness" tables that
 * only change text that looks like mis-decoded UTF-8 (e.g. "cafÃ©" -> "café"); such text tokenizes
 * differently here than in open_clip. Everything else ftfy does by default is reproduced: the per-line
 * segmenting, `unescape_html` ("auto": skipped from the first line that contains "<" on), `fix_c1_controls`
 * (as Windows-1252), `fix_latin_ligatures`, `fix_character_width`, `uncurl_quotes`, `fix_line_breaks`,
 * `fix_surrogates`, `remove_terminal_escapes`, `remove_control_chars`, NFC, repeated until nothing changes.
 * Unicode tables (NFC, NFKC widths, letter/number classes, case mapping) are the JavaScript engine's.
 */
import { HTML5_ENTITIES, FTFY_UPPER_ENTITIES } from './html_entities.js';

let html5: Map<string, string> | undefined;
let ftfyEntities: Map<string, string> | undefined;

function html5Map(): Map<string, string> {
  html5 ??= new Map(Object.entries(HTML5_ENTITIES));
  return html5;
}

/** Python's html._invalid_charrefs: numeric references the HTML5 parser remaps (C1 range as Windows-1252). */
const INVALID_CHARREFS: ReadonlyMap<number, string> = new Map<number, string>([
  [0x00, '\ufffd'], [0x0d, '\r'], [0x80, '\u20ac'], [0x81, '\x81'], [0x82, '\u201a'], [0x83, '\u0192'],
  [0x84, '\u201e'], [0x85, '\u2026'], [0x86, '\u2020'], [0x87, '\u2021'], [0x88, '\u02c6'], [0x89, '\u2030'],
  [0x8a, '\u0160'], [0x8b, '\u2039'], [0x8c, '\u0152'], [0x8d, '\x8d'], [0x8e, '\u017d'], [0x8f, '\x8f'],
  [0x90, '\x90'], [0x91, '\u2018'], [0x92, '\u2019'], [0x93, '\u201c'], [0x94, '\u201d'], [0x95, '\u2022'],
  [0x96, '\u2013'], [0x97, '\u2014'], [0x98, '\u02dc'], [0x99, '\u2122'], [0x9a, '\u0161'], [0x9b, '\u203a'],
  [0x9c, '\u0153'], [0x9d, '\x9d'], [0x9e, '\u017e'], [0x9f, '\u0178'],
]);

/** Python's html._invalid_codepoints: references to these decode to nothing. */
function invalidCodepoint(n: number): boolean {
  return (n >= 0x1 && n <= 0x8) || n === 0xb || (n >= 0xe && n <= 0x1f) || (n >= 0x7f && n <= 0x9f) ||
    (n >= 0xfdd0 && n <= 0xfdef) || (n & 0xfffe) === 0xfffe;
}

const CHARREF = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/gu;

function numericRef(s: string): string {
  const body = s.endsWith(';') ? s.slice(0, -1) : s;
  const hex = body[1] === 'x' || body[1] === 'X';
  const digits = body.slice(hex ? 2 : 1).replace(/^0+/, '');
  // more than 7 significant digits is above 0x10FFFF in either base (Python has big ints; we need not)
  const num = digits.length > 7 ? Infinity : digits.length === 0 ? 0 : parseInt(digits, hex ? 16 : 10);
  const remapped = INVALID_CHARREFS.get(num);
  if (remapped !== undefined) return remapped;
  if ((num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff) return '\ufffd';
  if (invalidCodepoint(num)) return '';
  return String.fromCodePoint(num);
}

/** Python's `html.unescape`. */
export function htmlUnescape(s: string): string {
  if (!s.includes('&')) return s;
  const table = html5Map();
  return s.replace(CHARREF, (_m, ref: string) => {
    if (ref[0] === '#') return numericRef(ref);
    const hit = table.get(ref);
    if (hit !== undefined) return hit;
    // the longest prefix that is a name (only the legacy names without ";" can match here)
    const cps = Array.from(ref);
    for (let x = cps.length - 1; x > 1; x--) {
      const head = cps.slice(0, x).join('');
      const v = table.get(head);
      if (v !== undefined) return v + cps.slice(x).join('');
    }
    return '&' + ref;
  });
}

const FTFY_ENTITY = /&#?[0-9A-Za-z]{1,24};/g;

/** ftfy's `unescape_html`: only references ending in ";", plus all-caps aliases such as "&EACUTE;". */
export function ftfyUnescapeHtml(text: string): string {
  if (!ftfyEntities) {
    ftfyEntities = new Map();
    for (const [k, v] of html5Map()) if (k.endsWith(';')) ftfyEntities.set('&' + k, v);
    for (const [k, v] of Object.entries(FTFY_UPPER_ENTITIES)) ftfyEntities.set('&' + k, v);
  }
  const table = ftfyEntities;
  return text.replace(FTFY_ENTITY, (m) => {
    const hit = table.get(m);
    if (hit !== undefined) return hit;
    if (m.startsWith('&#')) {
      const u = htmlUnescape(m);
      return u.includes(';') ? m : u;
    }
    return m;
  });
}

/** Windows-1252 for 0x80..0x9F ("sloppy": the five undefined bytes stay as they are). */
const CP1252_C1 = '\u20ac\x81\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\x8d\u017d\x8f' +
  '\x90\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\x9d\u017e\u0178';

const LIGATURES: Readonly<Record<string, string>> = {
  'Ĳ': 'IJ', 'ĳ': 'ij', 'ŉ': 'ʼn', 'Ǳ': 'DZ', 'ǲ': 'Dz', 'ǳ': 'dz', 'Ǆ': 'DŽ', 'ǅ': 'Dž', 'ǆ': 'dž',
  'Ǉ': 'LJ', 'ǈ': 'Lj', 'ǉ': 'lj', 'Ǌ': 'NJ', 'ǋ': 'Nj', 'ǌ': 'nj',
  'ﬀ': 'ff', 'ﬁ': 'fi', 'ﬂ': 'fl', 'ﬃ': 'ffi', 'ﬄ': 'ffl', 'ﬅ': 'ſt', 'ﬆ': 'st',
};
const LIGATURE_RE = new RegExp(`[${Object.keys(LIGATURES).join('')}]`, 'gu');

let widthMap: Map<string, string> | undefined;
/** ftfy's WIDTH_MAP: U+3000 -> space, and every U+FF01..U+FFEF whose NFKC form differs. */
function widthOf(ch: string): string {
  if (!widthMap) {
    widthMap = new Map([['\u3000', ' ']]);
    for (let i = 0xff01; i < 0xfff0; i++) {
      const c = String.fromCharCode(i);
      const alt = c.normalize('NFKC');
      if (alt !== c) widthMap.set(c, alt);
    }
  }
  return widthMap.get(ch) ?? ch;
}

const C1_RE = /[\x80-\x9f]/g;
const WIDTH_RE = /[\u3000\uff01-\uffef]/g;
const SINGLE_QUOTE_RE = /[\u02bc\u2018-\u201b]/g;
const DOUBLE_QUOTE_RE = /[\u201c-\u201f]/g;
const LONE_SURROGATE_RE = /[\ud800-\udfff]/gu; // with the u flag only unpaired halves match
const ANSI_RE = /\x1b\[((?:\d|;)*)([a-zA-Z])/g;
const CONTROL_RE = /[\x00-\x08\x0b\x0e-\x1f\x7f\u206a-\u206f\ufeff\ufff9-\ufffc]/g;

function fixSegment(text: string, unescape: boolean): string {
  for (;;) {
    const orig = text;
    if (unescape) text = ftfyUnescapeHtml(text);
    text = text.replace(C1_RE, (c) => CP1252_C1[c.charCodeAt(0) - 0x80]!);
    text = text.replace(LIGATURE_RE, (c) => LIGATURES[c]!);
    text = text.replace(WIDTH_RE, widthOf);
    text = text.replace(DOUBLE_QUOTE_RE, '"').replace(SINGLE_QUOTE_RE, "'");
    text = text.replace(/\r\n/g, '\n').replace(/[\r\u2028\u2029\x85]/g, '\n');
    text = text.replace(LONE_SURROGATE_RE, '\ufffd');
    text = text.replace(ANSI_RE, '');
    text = text.replace(CONTROL_RE, '');
    text = text.normalize('NFC');
    if (text === orig) return text;
  }
}

/** ftfy 6.3 `fix_text` with default options, without the mojibake repair (see the module comment). */
export function fixText(text: string, maxDecodeLength = 1_000_000): string {
  let out = '';
  let unescape = true; // unescape_html="auto"
  let pos = 0;
  while (pos < text.length) {
    let brk = text.indexOf('\n', pos) + 1;
    if (brk === 0) brk = text.length;
    if (brk - pos > maxDecodeLength) brk = pos + maxDecodeLength;
    const segment = text.slice(pos, brk);
    if (unescape && segment.includes('<')) unescape = false; // ftfy keeps it off for the rest of the text
    out += fixSegment(segment, unescape);
    pos = brk;
  }
  return out;
}

/** what Python's `regex` module's \s matches: Unicode White_Space (JS's \s adds U+FEFF and lacks U+0085) */
const WS_RUN = /\p{White_Space}+/gu;
/** Python's str.strip() with no argument: str.isspace() is White_Space plus U+001C..U+001F */
const PY_STRIP = /^[\p{White_Space}\x1c-\x1f]+|[\p{White_Space}\x1c-\x1f]+$/gu;

export function pyStrip(text: string): string {
  return text.replace(PY_STRIP, '');
}

export function basicClean(text: string): string {
  return pyStrip(htmlUnescape(htmlUnescape(fixText(text))));
}

export function whitespaceClean(text: string): string {
  return pyStrip(text.replace(WS_RUN, ' '));
}

/** open_clip's default clean ('lower'): whitespace_clean(basic_clean(text)).lower() */
export function cleanLower(text: string): string {
  return whitespaceClean(basicClean(text)).toLowerCase();
}

/** transformers' CLIPTokenizerFast normalizer: NFC, \s+ -> ' ', lowercase (no ftfy, no HTML unescaping). */
export function cleanHf(text: string): string {
  return text.normalize('NFC').replace(WS_RUN, ' ').toLowerCase();
}
