/**
 * Building a BpeTokenizer from the two vocabulary formats CLIP checkpoints ship:
 *
 * - OpenAI's `bpe_simple_vocab_16e6.txt` (open_clip's default, shipped in data/clip/): a header line, then
 *   merges "a b" one per line. open_clip takes lines 1..48894 (49152 - 256 - 2 merges) and builds the vocab
 *   as the 256 byte characters, the same 256 with "</w>", one entry per merge (the pair joined), then
 *   <start_of_text> = 49406 and <end_of_text> = 49407. Padding is 0.
 * - Hugging Face's: `tokenizer.json` (`model.vocab` {token: id}, `model.merges` ["a b"] or [["a", "b"]],
 *   `added_tokens`) or `vocab.json` + `merges.txt` (first line "#version: ..."). Special tokens are
 *   <|startoftext|> / <|endoftext|>; transformers pads with its pad_token (<|endoftext|> for OpenAI's CLIP).
 *
 * Pure functions over text: reading the files is src/node/text.ts's job.
 */
import { VitkitError } from '../errors.js';
import { BpeTokenizer, bytesToUnicodeEntries, type TextClean } from './bpe.js';

export const OPENAI_CONTEXT_LENGTH = 77;
export const OPENAI_MERGES = 49152 - 256 - 2;

export interface OpenAiVocabOptions {
  contextLength?: number;
  /** extra special tokens appended to the vocabulary after <end_of_text> (open_clip's additional_special_tokens) */
  additionalSpecialTokens?: readonly string[];
  /** where the text came from, for error messages */
  source?: string;
}

const OTHER_WS = /[\t-\r\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/u;

/** "a b" lines -> pairs, as Python's line.split() (any whitespace run separates; exactly two parts) */
function parseMergeLines(lines: readonly string[], source: string, firstLine: number): Array<[string, string]> {
  const merges: Array<[string, string]> = new Array(lines.length);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const sp = line.indexOf(' ');
    if (sp > 0 && sp < line.length - 1 && line.indexOf(' ', sp + 1) === -1 && !OTHER_WS.test(line)) {
      merges[i] = [line.slice(0, sp), line.slice(sp + 1)];
      continue;
    }
    const parts = line.split(/[\s\x85]+/u).filter((p) => p.length > 0);
    if (parts.length !== 2) {
      throw new VitkitError(`${source} line ${i + firstLine + 1}: expected a merge "a b" but received ${JSON.stringify(line)}`);
    }
    merges[i] = [parts[0]!, parts[1]!];
  }
  return merges;
}

/** the first n lines of a text (without splitting all of it) */
function firstLines(text: string, n: number): string[] {
  const out: string[] = [];
  let pos = 0;
  while (out.length < n && pos <= text.length) {
    const e = text.indexOf('\n', pos);
    if (e < 0) {
      out.push(text.slice(pos));
      break;
    }
    out.push(text.slice(pos, e));
    pos = e + 1;
  }
  return out;
}

/** open_clip's SimpleTokenizer from the text of bpe_simple_vocab_16e6.txt. */
export function openAiTokenizer(mergesText: string, opts: OpenAiVocabOptions = {}): BpeTokenizer {
  const source = opts.source ?? 'bpe_simple_vocab_16e6.txt';
  const lines = firstLines(mergesText, OPENAI_MERGES + 1);
  if (lines.length < OPENAI_MERGES + 1) {
    throw new VitkitError(`${source} has ${Math.max(0, lines.length - 1)} merge lines; expected at least ${OPENAI_MERGES}`);
  }
  const merges = parseMergeLines(lines.slice(1, OPENAI_MERGES + 1), source, 1);
  const byteChars = bytesToUnicodeEntries().map(([, c]) => c); // list(bytes_to_unicode().values())
  const vocab: string[] = [...byteChars, ...byteChars.map((c) => c + '</w>')];
  for (const [a, b] of merges) vocab.push(a + b);
  const specials = ['<start_of_text>', '<end_of_text>', ...(opts.additionalSpecialTokens ?? [])];
  vocab.push(...specials);
  // dict(zip(vocab, range)): a repeated string keeps its last id, as in Python
  const encoder = new Map<string, number>();
  vocab.forEach((t, i) => encoder.set(t, i));
  return new BpeTokenizer({
    encoder, merges, specialTokens: specials, bos: '<start_of_text>', eos: '<end_of_text>',
    padId: 0, contextLength: opts.contextLength ?? OPENAI_CONTEXT_LENGTH, clean: 'openclip',
  });
}

export interface HfVocabOptions {
  contextLength?: number;
  bos?: string;
  eos?: string;
  /** pad token string (its id is looked up) or id; default the eos token, as CLIP's tokenizer_config has it */
  pad?: string | number;
  /** 'openclip' (ftfy + HTML + whitespace + lower) or 'hf' (the fast tokenizer's NFC + whitespace + lower) */
  clean?: TextClean;
  source?: string;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function vocabMap(v: unknown, source: string): Map<string, number> {
  if (!isRecord(v)) throw new VitkitError(`${source}: expected a vocabulary object {token: id} but received ${Array.isArray(v) ? 'an array' : typeof v}`);
  const m = new Map<string, number>();
  for (const [k, id] of Object.entries(v)) {
    if (!Number.isInteger(id) || (id as number) < 0) throw new VitkitError(`${source}: expected a non-negative integer id for token ${JSON.stringify(k)} but received ${JSON.stringify(id)}`);
    m.set(k, id as number);
  }
  return m;
}

function mergeList(v: unknown, source: string): Array<[string, string]> {
  if (!Array.isArray(v)) throw new VitkitError(`${source}: expected "merges" to be an array but received ${typeof v}`);
  return v.map((m, i) => {
    if (typeof m === 'string') {
      const parts = m.split(' ');
      if (parts.length !== 2) throw new VitkitError(`${source}: merge ${i} should be "a b" but received ${JSON.stringify(m)}`);
      return [parts[0]!, parts[1]!] as [string, string];
    }
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') return [m[0], m[1]] as [string, string];
    throw new VitkitError(`${source}: merge ${i} should be "a b" or ["a", "b"] but received ${JSON.stringify(m)}`);
  });
}

function hfTokenizer(encoder: Map<string, number>, merges: Array<[string, string]>, specials: string[], opts: HfVocabOptions): BpeTokenizer {
  const source = opts.source ?? 'tokenizer';
  const bos = opts.bos ?? '<|startoftext|>';
  const eos = opts.eos ?? '<|endoftext|>';
  for (const [t, what] of [[bos, 'begin'], [eos, 'end']] as const) {
    if (!encoder.has(t)) throw new VitkitError(`${source}: the vocabulary has no ${what} token ${JSON.stringify(t)}`);
    if (!specials.includes(t)) specials.push(t);
  }
  let padId: number;
  const pad = opts.pad ?? eos;
  if (typeof pad === 'number') padId = pad;
  else {
    const p = encoder.get(pad);
    if (p === undefined) throw new VitkitError(`${source}: the pad token ${JSON.stringify(pad)} is not in the vocabulary`);
    padId = p;
  }
  return new BpeTokenizer({
    encoder, merges, specialTokens: specials, bos, eos, padId,
    contextLength: opts.contextLength ?? OPENAI_CONTEXT_LENGTH, clean: opts.clean ?? 'openclip',
  });
}

/** A BPE tokenizer from a parsed Hugging Face `tokenizer.json`. */
export function hfTokenizerJson(json: unknown, opts: HfVocabOptions = {}): BpeTokenizer {
  const source = opts.source ?? 'tokenizer.json';
  if (!isRecord(json) || !isRecord(json['model'])) throw new VitkitError(`${source}: expected an object with a "model" object`);
  const model = json['model'];
  if (model['type'] !== undefined && model['type'] !== 'BPE') {
    throw new VitkitError(`${source}: expected model.type "BPE" but received ${JSON.stringify(model['type'])}`);
  }
  const suffix = model['end_of_word_suffix'];
  if (suffix !== undefined && suffix !== null && suffix !== '</w>') {
    throw new VitkitError(`${source}: expected model.end_of_word_suffix "</w>" (CLIP's BPE) but received ${JSON.stringify(suffix)}`);
  }
  const encoder = vocabMap(model['vocab'], `${source} model.vocab`);
  const merges = mergeList(model['merges'], `${source} model.merges`);
  const specials: string[] = [];
  const added = json['added_tokens'];
  if (Array.isArray(added)) {
    for (const t of added) {
      if (isRecord(t) && typeof t['content'] === 'string' && Number.isInteger(t['id'])) {
        encoder.set(t['content'], t['id'] as number);
        if (t['special'] !== false) specials.push(t['content']);
      }
    }
  }
  return hfTokenizer(encoder, merges, specials, { ...opts, source });
}

/** A BPE tokenizer from Hugging Face's `vocab.json` (parsed) and `merges.txt` (text). */
export function hfVocabMerges(vocabJson: unknown, mergesText: string, opts: HfVocabOptions = {}): BpeTokenizer {
  const source = opts.source ?? 'vocab.json + merges.txt';
  const encoder = vocabMap(vocabJson, 'vocab.json');
  let lines = mergesText.split('\n');
  let first = 0;
  if (lines[0]?.startsWith('#version')) {
    lines = lines.slice(1);
    first = 1;
  }
  while (lines.length > 0 && lines[lines.length - 1]!.trim() === '') lines.pop();
  const merges = parseMergeLines(lines, 'merges.txt', first);
  const specials = [opts.bos ?? '<|startoftext|>', opts.eos ?? '<|endoftext|>'].filter((t) => encoder.has(t));
  return hfTokenizer(encoder, merges, specials, { ...opts, source });
}
