/**
 * Node side of the tokenizer: the shipped OpenAI vocabulary (data/clip/bpe_simple_vocab_16e6.txt.gz,
 * read and gunzipped with node:zlib on first use) and tokenizers from a checkpoint directory.
 *
 * Each layout keeps its library's semantics:
 * - open_clip's hub layout (`open_clip_config.json`; the default when that file is present): the shipped
 *   OpenAI vocabulary with model_cfg.text_cfg.context_length and zero padding, as open_clip's get_tokenizer
 *   does (a text_cfg.hf_tokenizer_name means the directory's Hugging Face files instead);
 * - Hugging Face's: `tokenizer.json` (fast tokenizer), else `vocab.json` + `merges.txt` (slow): pad id from
 *   tokenizer_config.json / special_tokens_map.json pad_token (transformers pads CLIP with <|endoftext|>),
 *   context length from model_max_length, else config.json text_config.max_position_embeddings.
 */
import { existsSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { VitkitError } from '../errors.js';
import { readJsonFile as readJson, readTextFile } from '../io/files.js';
import type { BpeTokenizer, TextClean } from '../text/bpe.js';
import { openAiTokenizer, hfTokenizerJson, hfVocabMerges, OPENAI_CONTEXT_LENGTH, type HfVocabOptions } from '../text/vocab.js';

/** the package root: this file is dist/src/node/text.js */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const OPENAI_VOCAB_FILE = path.join(ROOT, 'data', 'clip', 'bpe_simple_vocab_16e6.txt.gz');

let vocabText: string | undefined;
const defaults = new Map<number, BpeTokenizer>();

/** The text of the shipped bpe_simple_vocab_16e6.txt (decompressed once). */
export function openAiVocabText(): string {
  if (vocabText === undefined) {
    let gz: Buffer;
    try {
      gz = readFileSync(OPENAI_VOCAB_FILE);
    } catch (e) {
      throw new VitkitError(`Cannot read the shipped CLIP vocabulary ${OPENAI_VOCAB_FILE}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    vocabText = gunzipSync(gz).toString('utf8');
  }
  return vocabText;
}

/** open_clip's default tokenizer (OpenAI's vocabulary, zero padding) for a context length (default 77). */
export function clipTokenizer(contextLength = OPENAI_CONTEXT_LENGTH): BpeTokenizer {
  let t = defaults.get(contextLength);
  if (!t) {
    t = openAiTokenizer(openAiVocabText(), { contextLength, source: OPENAI_VOCAB_FILE });
    defaults.set(contextLength, t);
  }
  return t;
}

function readJsonFile(file: string): unknown {
  return readJson(file, 'tokenizer file');
}

function obj(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

/** a tokenizer_config.json / special_tokens_map.json token: "x" or {"content": "x"} */
function tokenString(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  const c = obj(v)['content'];
  return typeof c === 'string' ? c : undefined;
}

function hfOptions(dir: string, clean: TextClean | undefined): HfVocabOptions {
  const tc = existsSync(path.join(dir, 'tokenizer_config.json')) ? obj(readJsonFile(path.join(dir, 'tokenizer_config.json'))) : {};
  const sm = existsSync(path.join(dir, 'special_tokens_map.json')) ? obj(readJsonFile(path.join(dir, 'special_tokens_map.json'))) : {};
  const cfg = existsSync(path.join(dir, 'config.json')) ? obj(readJsonFile(path.join(dir, 'config.json'))) : {};
  const opts: HfVocabOptions = { clean: clean ?? 'openclip' };
  const bos = tokenString(tc['bos_token']) ?? tokenString(sm['bos_token']);
  const eos = tokenString(tc['eos_token']) ?? tokenString(sm['eos_token']);
  const pad = tokenString(tc['pad_token']) ?? tokenString(sm['pad_token']);
  if (bos) opts.bos = bos;
  if (eos) opts.eos = eos;
  if (pad) opts.pad = pad;
  // model_max_length (transformers writes a huge sentinel when unset), else the text tower's positions
  const mml = tc['model_max_length'];
  const positions = obj(cfg['text_config'])['max_position_embeddings'];
  if (typeof mml === 'number' && Number.isInteger(mml) && mml >= 2 && mml <= 1 << 20) opts.contextLength = mml;
  else if (typeof positions === 'number' && Number.isInteger(positions) && positions >= 2) opts.contextLength = positions;
  return opts;
}

export interface LoadTokenizerOptions {
  /** override the context length from the layout */
  contextLength?: number;
  /** cleaning for Hugging Face layouts (default 'openclip', which matches open_clip; 'hf' = the fast tokenizer's normalizer) */
  clean?: TextClean;
  /**
   * whose semantics: 'open_clip' (shipped OpenAI vocabulary, zero padding, context from open_clip_config.json)
   * or 'hf' (the directory's tokenizer files, transformers' pad token). Default: 'open_clip' when the directory
   * has open_clip_config.json, else 'hf'.
   */
  layout?: 'open_clip' | 'hf';
}

function hfFromFiles(dir: string, opts: LoadTokenizerOptions): BpeTokenizer | undefined {
  const f = (n: string) => path.join(dir, n);
  if (existsSync(f('tokenizer.json'))) {
    const o = hfOptions(dir, opts.clean);
    if (opts.contextLength !== undefined) o.contextLength = opts.contextLength;
    return hfTokenizerJson(readJsonFile(f('tokenizer.json')), { ...o, source: f('tokenizer.json') });
  }
  if (existsSync(f('vocab.json')) && existsSync(f('merges.txt'))) {
    const o = hfOptions(dir, opts.clean);
    if (opts.contextLength !== undefined) o.contextLength = opts.contextLength;
    return hfVocabMerges(readJsonFile(f('vocab.json')), readTextFile(f('merges.txt'), 'tokenizer file'), { ...o, source: f('merges.txt') });
  }
  return undefined;
}

/**
 * The tokenizer of a checkpoint directory (see the module comment), or open_clip's default when `dir` is
 * undefined. Seam for Hub ids: resolve them to a directory first.
 */
export function loadTokenizer(dir?: string, opts: LoadTokenizerOptions = {}): BpeTokenizer {
  if (dir === undefined) return clipTokenizer(opts.contextLength ?? OPENAI_CONTEXT_LENGTH);
  if (!existsSync(dir)) throw new VitkitError(`Model directory ${dir} does not exist`);
  const ocFile = path.join(dir, 'open_clip_config.json');
  const layout = opts.layout ?? (existsSync(ocFile) ? 'open_clip' : 'hf');
  if (layout === 'hf') {
    const t = hfFromFiles(dir, opts);
    if (t) return t;
    throw new VitkitError(`No tokenizer in ${dir}: expected tokenizer.json, vocab.json + merges.txt, or open_clip_config.json`);
  }
  if (!existsSync(ocFile)) throw new VitkitError(`No open_clip_config.json in ${dir} (tokenizer layout 'open_clip')`);
  const cfg = obj(readJsonFile(ocFile));
  const text = obj(obj(cfg['model_cfg'])['text_cfg']);
  if (typeof text['hf_tokenizer_name'] === 'string' && text['hf_tokenizer_name'] !== '') {
    // open_clip's HFTokenizer: the named Hugging Face tokenizer, padded by it
    const t = hfFromFiles(dir, opts);
    if (t) return t;
    throw new VitkitError(`${ocFile} uses the Hugging Face tokenizer ${JSON.stringify(text['hf_tokenizer_name'])}; put its tokenizer.json in ${dir}`);
  }
  const ctx = text['context_length'];
  let L = OPENAI_CONTEXT_LENGTH;
  if (ctx !== undefined) {
    if (typeof ctx !== 'number' || !Number.isInteger(ctx) || ctx < 2) {
      throw new VitkitError(`Expected an integer >= 2 for model_cfg.text_cfg.context_length in ${ocFile} but received ${JSON.stringify(ctx)}`);
    }
    L = ctx;
  }
  const vocab = text['vocab_size'];
  if (vocab !== undefined && vocab !== 49408) {
    throw new VitkitError(`Expected text vocab_size 49408 (OpenAI's vocabulary) in ${ocFile} but received ${JSON.stringify(vocab)}`);
  }
  return clipTokenizer(opts.contextLength ?? L);
}
