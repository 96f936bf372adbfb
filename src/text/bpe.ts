/**
 * CLIP's byte-level BPE tokenizer, as open_clip 2.24's `SimpleTokenizer` applies it (and OpenAI's CLIP
 * before it): clean the text, split it with CLIP's regex, map every UTF-8 byte of a piece to a printable
 * character (`bytes_to_unicode`), merge pairs by rank with "</w>" marking the end of the piece, look the
 * symbols up, then add <start_of_text> / <end_of_text>, truncate (the end token stays the last id) and pad.
 *
 * No Node-only imports: the vocabulary arrives as text or tables (see src/node/text.ts for the files).
 */
import { VitkitError } from '../errors.js';
import { cleanLower, cleanHf } from './clean.js';

/** How text is cleaned before the split: open_clip's ftfy/HTML/whitespace/lower, or HF's fast normalizer. */
export type TextClean = 'openclip' | 'hf';

export interface BpeTokenizerSpec {
  /** token string -> id */
  encoder: ReadonlyMap<string, number>;
  /** merge pairs in rank order (rank 0 first) */
  merges: ReadonlyArray<readonly [string, string]>;
  /** special tokens, matched literally (case-insensitively) before the regex split, e.g. '<start_of_text>' */
  specialTokens: readonly string[];
  /** the begin / end token strings (both in `specialTokens`) */
  bos: string;
  eos: string;
  /** id written after the end token up to the context length: open_clip 0, transformers its pad_token */
  padId: number;
  contextLength: number;
  clean?: TextClean;
}

/** OpenAI's bytes_to_unicode as a table: byte -> a printable character (printable Latin-1 maps to itself). */
export function bytesToUnicode(): string[] {
  const table = new Array<string>(256);
  for (const [b, c] of bytesToUnicodeEntries()) table[b] = c;
  return table;
}

/** bytes_to_unicode's dict in its insertion order: the 188 printable bytes first, then the other 68 (-> U+0100..). */
export function bytesToUnicodeEntries(): Array<[number, string]> {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const out: Array<[number, string]> = bs.map((b) => [b, String.fromCharCode(b)]);
  const printable = new Set(bs);
  let n = 0;
  for (let b = 0; b < 256; b++) if (!printable.has(b)) out.push([b, String.fromCharCode(256 + n++)]);
  return out;
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Bounded memo of piece -> symbols: open_clip's cache is an unbounded dict; results are identical. */
const CACHE_LIMIT = 200_000;

export class BpeTokenizer {
  readonly contextLength: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  readonly vocabSize: number;
  readonly clean: TextClean;
  private readonly encoder: ReadonlyMap<string, number>;
  private readonly ranks = new Map<string, number>();
  private readonly byteChars = bytesToUnicode();
  private readonly pattern: RegExp;
  private readonly specials: ReadonlySet<string>;
  private cache = new Map<string, number[]>();
  private readonly utf8 = new TextEncoder();

  constructor(spec: BpeTokenizerSpec) {
    if (!Number.isInteger(spec.contextLength) || spec.contextLength < 2) {
      throw new VitkitError(`Expected an integer >= 2 for the tokenizer context length but received ${spec.contextLength}`);
    }
    this.encoder = spec.encoder;
    spec.merges.forEach(([a, b], i) => {
      const key = a + ' ' + b;
      if (!this.ranks.has(key)) this.ranks.set(key, i);
    });
    const id = (t: string, what: string): number => {
      const v = spec.encoder.get(t);
      if (v === undefined) throw new VitkitError(`The tokenizer vocabulary has no ${what} token ${JSON.stringify(t)}`);
      return v;
    };
    this.bosId = id(spec.bos, 'begin');
    this.eosId = id(spec.eos, 'end');
    for (const t of spec.specialTokens) id(t, 'special');
    this.padId = spec.padId;
    this.contextLength = spec.contextLength;
    this.clean = spec.clean ?? 'openclip';
    this.specials = new Set(spec.specialTokens);
    let max = -1;
    for (const v of spec.encoder.values()) if (v > max) max = v;
    this.vocabSize = max + 1;
    // \s in Python's `regex` is Unicode White_Space, which JS's \s is not (U+FEFF, U+0085)
    const special = spec.specialTokens.map(escapeRegex).join('|');
    this.pattern = new RegExp(
      (special ? special + '|' : '') + "'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\p{White_Space}\\p{L}\\p{N}]+",
      'giu',
    );
  }

  /** The cleaned text the split sees (open_clip's clean_fn). */
  cleanText(text: string): string {
    return this.clean === 'hf' ? cleanHf(text) : cleanLower(text);
  }

  /** The ids of one text without the begin/end tokens (open_clip's `encode`). */
  encode(text: string): number[] {
    const out: number[] = [];
    const cleaned = this.cleanText(text);
    for (const m of cleaned.matchAll(this.pattern)) {
      const piece = m[0];
      if (this.specials.has(piece)) {
        // open_clip seeds its BPE cache with the special tokens: they map to themselves, no "</w>"
        out.push(this.encoder.get(piece)!);
        continue;
      }
      let syms = this.cache.get(piece);
      if (syms === undefined) {
        syms = this.bpe(piece);
        if (this.cache.size >= CACHE_LIMIT) this.cache = new Map();
        this.cache.set(piece, syms);
      }
      for (const s of syms) out.push(s);
    }
    return out;
  }

  /** BPE of one regex piece -> ids. */
  private bpe(piece: string): number[] {
    const bytes = this.utf8.encode(piece);
    const word: string[] = new Array<string>(bytes.length);
    for (let i = 0; i < bytes.length; i++) word[i] = this.byteChars[bytes[i]!]!;
    word[word.length - 1] += '</w>';
    let w = word;
    while (w.length > 1) {
      // the lowest-ranked adjacent pair
      let best = Infinity;
      let first = '';
      let second = '';
      for (let i = 0; i + 1 < w.length; i++) {
        const r = this.ranks.get(w[i]! + ' ' + w[i + 1]!);
        if (r !== undefined && r < best) {
          best = r;
          first = w[i]!;
          second = w[i + 1]!;
        }
      }
      if (best === Infinity) break;
      // merge every non-overlapping occurrence, left to right
      const next: string[] = [];
      for (let i = 0; i < w.length; ) {
        if (w[i] === first && i + 1 < w.length && w[i + 1] === second) {
          next.push(first + second);
          i += 2;
        } else {
          next.push(w[i]!);
          i += 1;
        }
      }
      w = next;
    }
    return w.map((s) => {
      const v = this.encoder.get(s);
      if (v === undefined) throw new VitkitError(`The tokenizer vocabulary has no entry for the BPE symbol ${JSON.stringify(s)} (vocabulary and merges disagree)`);
      return v;
    });
  }

  /** open_clip's `decode`: ids -> text, "</w>" -> " ", invalid UTF-8 replaced by U+FFFD (ids 0 are "!", as there). */
  decode(ids: ArrayLike<number>): string {
    if (!this.decoder) {
      this.decoder = new Map();
      for (const [t, id] of this.encoder) this.decoder.set(id, t);
      this.byteOf = new Map(bytesToUnicodeEntries().map(([b, c]) => [c, b]));
    }
    let text = '';
    for (let i = 0; i < ids.length; i++) {
      const t = this.decoder.get(ids[i]!);
      if (t === undefined) throw new VitkitError(`Expected token ids in [0, ${this.vocabSize}) but received ${ids[i]} at position ${i}`);
      text += t;
    }
    const bytes: number[] = [];
    for (const ch of text) {
      const b = this.byteOf!.get(ch);
      if (b === undefined) throw new VitkitError(`The token text ${JSON.stringify(ch)} is not a byte character (vocabulary and bytes_to_unicode disagree)`);
      bytes.push(b);
    }
    return new TextDecoder('utf-8').decode(new Uint8Array(bytes)).replaceAll('</w>', ' ');
  }

  private decoder: Map<number, string> | undefined;
  private byteOf: Map<string, number> | undefined;

  /** One row: [bos, ...ids, eos] truncated to the context length with eos last, then padded. */
  encodeRow(text: string, contextLength = this.contextLength, out?: Int32Array, offset = 0): Int32Array {
    const L = contextLength;
    const row = out ?? new Int32Array(L); // (L,)
    const ids = this.encode(text);
    const n = Math.min(ids.length + 2, L);
    row[offset] = this.bosId;
    for (let i = 1; i < n - 1; i++) row[offset + i] = ids[i - 1]!;
    row[offset + n - 1] = this.eosId;
    row.fill(this.padId, offset + n, offset + L);
    return row;
  }

  /** open_clip's `tokenizer(texts)`: ids (B, L) row-major, L = the context length. */
  tokenize(texts: string | readonly string[], contextLength = this.contextLength): { ids: Int32Array; shape: [number, number] } {
    const list = typeof texts === 'string' ? [texts] : texts;
    if (!Number.isInteger(contextLength) || contextLength < 2) {
      throw new VitkitError(`Expected an integer >= 2 for the context length but received ${contextLength}`);
    }
    list.forEach((t, i) => {
      if (typeof t !== 'string') throw new VitkitError(`Expected a string for text ${i} but received ${typeof t}`);
    });
    const ids = new Int32Array(list.length * contextLength); // (B, L)
    list.forEach((t, i) => this.encodeRow(t, contextLength, ids, i * contextLength));
    return { ids, shape: [list.length, contextLength] };
  }
}

/** ids (B, L) int32 -> int64, the dtype open_clip and transformers hand to the text tower. */
export function toInt64(ids: Int32Array): BigInt64Array {
  const out = new BigInt64Array(ids.length); // same shape
  for (let i = 0; i < ids.length; i++) out[i] = BigInt(ids[i]!);
  return out;
}
