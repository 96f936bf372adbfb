/**
 * Hugging Face CLIP tokenizer files. No HF checkpoint is stored here, so the test writes them from the
 * shipped OpenAI vocabulary by the mapping transformers' own files follow (openai/clip-vit-base-patch32):
 *   vocab.json / tokenizer.json model.vocab = open_clip's vocab with <start_of_text> -> <|startoftext|> (49406)
 *   and <end_of_text> -> <|endoftext|> (49407); merges = the same 48,894 merges "a b";
 *   tokenizer_config.json: model_max_length 77, bos/eos as above, pad_token <|endoftext|>.
 * Expected ids: open_clip's reference ids with transformers' padding (pad id 49407 instead of 0).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { readSafetensors } from '../../src/io/safetensors.js';
import { openAiVocabText, loadTokenizer } from '../../src/node/text.js';
import { bytesToUnicodeEntries } from '../../src/text/bpe.js';
import { OPENAI_MERGES } from '../../src/text/vocab.js';
import { VitkitError } from '../../src/errors.js';
import { FIXTURES, tmp } from '../helpers.js';

const TOK_REF = path.join(FIXTURES, 'clip', 'clip_tokenizer.safetensors');

function hfFiles(): { vocab: Record<string, number>; merges: string[] } {
  const lines = openAiVocabText().split('\n').slice(1, OPENAI_MERGES + 1);
  const bytes = bytesToUnicodeEntries().map(([, c]) => c);
  const list = [...bytes, ...bytes.map((c) => c + '</w>'), ...lines.map((l) => l.split(' ').join('')), '<|startoftext|>', '<|endoftext|>'];
  const vocab: Record<string, number> = {};
  list.forEach((t, i) => (vocab[t] = i));
  return { vocab, merges: lines };
}

const TOKENIZER_CONFIG = { model_max_length: 77, bos_token: '<|startoftext|>', eos_token: '<|endoftext|>', pad_token: '<|endoftext|>', unk_token: '<|endoftext|>' };

function expectedHfRows(): { texts: string[]; rows: number[][] } {
  const ref = readSafetensors(TOK_REF);
  const texts = JSON.parse(ref.metadata['texts']!) as string[];
  const data = ref.i64('input_ids').data;
  const rows: number[][] = [];
  for (let i = 0; i < texts.length; i++) {
    const r = Array.from(data.subarray(i * 77, (i + 1) * 77), Number);
    const end = r.indexOf(49407);
    rows.push(r.map((v, j) => (j > end ? 49407 : v))); // transformers pads with <|endoftext|>
  }
  return { texts, rows };
}

function checkRows(dir: string) {
  const tok = loadTokenizer(dir);
  assert.equal(tok.padId, 49407);
  assert.equal(tok.contextLength, 77);
  const { texts, rows } = expectedHfRows();
  let compared = 0;
  texts.forEach((t, i) => {
    if (t === '<start_of_text>') return; // open_clip's special-token spelling is plain text for HF's files
    assert.deepEqual(Array.from(tok.encodeRow(t)), rows[i], `text ${i} ${JSON.stringify(t).slice(0, 50)}`);
    compared++;
  });
  assert.equal(compared, 23);
  assert.deepEqual(Array.from(tok.encodeRow('<|startoftext|>').subarray(0, 3)), [49406, 49406, 49407]);
}

test('tokenizer.json (model.vocab + model.merges, added_tokens) gives open_clip ids with pad = <|endoftext|>', () => {
  const dir = tmp();
  const { vocab, merges } = hfFiles();
  const json = {
    version: '1.0',
    added_tokens: [
      { id: 49406, content: '<|startoftext|>', special: true },
      { id: 49407, content: '<|endoftext|>', special: true },
    ],
    model: { type: 'BPE', end_of_word_suffix: '</w>', vocab, merges },
  };
  writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(json));
  writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(TOKENIZER_CONFIG));
  checkRows(dir);
});

test('tokenizer.json with merges as pairs (tokenizers >= 0.20 format)', () => {
  const dir = tmp();
  const { vocab, merges } = hfFiles();
  const json = { model: { type: 'BPE', vocab: { ...vocab }, merges: merges.map((m) => m.split(' ')) } };
  writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(json));
  writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ ...TOKENIZER_CONFIG, model_max_length: 16 }));
  const tok = loadTokenizer(dir);
  assert.equal(tok.contextLength, 16);
  const r = tok.encodeRow('a photo of a cat');
  assert.deepEqual(Array.from(r.subarray(0, 8)), [49406, 320, 1125, 539, 320, 2368, 49407, 49407]);
});

test('vocab.json + merges.txt', () => {
  const dir = tmp();
  const { vocab, merges } = hfFiles();
  writeFileSync(path.join(dir, 'vocab.json'), JSON.stringify(vocab));
  writeFileSync(path.join(dir, 'merges.txt'), '#version: 0.2\n' + merges.join('\n') + '\n');
  writeFileSync(path.join(dir, 'special_tokens_map.json'), JSON.stringify({ bos_token: { content: '<|startoftext|>' }, eos_token: '<|endoftext|>', pad_token: '<|endoftext|>' }));
  checkRows(dir);
});

test('open_clip hub layout: shipped vocabulary, context length from the config, zero padding', () => {
  const dir = tmp();
  writeFileSync(path.join(dir, 'open_clip_config.json'), JSON.stringify({ model_cfg: { text_cfg: { context_length: 12, vocab_size: 49408 } } }));
  const tok = loadTokenizer(dir);
  assert.equal(tok.contextLength, 12);
  assert.equal(tok.padId, 0);
  assert.deepEqual(Array.from(tok.encodeRow('a diagram')), [49406, 320, 22697, 49407, 0, 0, 0, 0, 0, 0, 0, 0]);
});

test('bad tokenizer files are one-line VitkitErrors naming the file', () => {
  const dir = tmp();
  assert.throws(() => loadTokenizer(dir), (e: unknown) => e instanceof VitkitError && /No tokenizer in .*expected tokenizer\.json/.test(e.message));
  assert.throws(() => loadTokenizer(path.join(dir, 'nope')), /does not exist/);
  writeFileSync(path.join(dir, 'tokenizer.json'), '{"model": {"type": "WordPiece", "vocab": {}}}');
  assert.throws(() => loadTokenizer(dir), /tokenizer\.json: expected model\.type "BPE" but received "WordPiece"/);
  writeFileSync(path.join(dir, 'tokenizer.json'), '{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b c"]}}');
  assert.throws(() => loadTokenizer(dir), /merge 0 should be "a b"/);
  writeFileSync(path.join(dir, 'tokenizer.json'), '{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}');
  assert.throws(() => loadTokenizer(dir), /tokenizer\.json: the vocabulary has no begin token "<\|startoftext\|>"/);
  writeFileSync(path.join(dir, 'tokenizer.json'), '{not json');
  assert.throws(() => loadTokenizer(dir), /tokenizer\.json is not valid JSON/);
});

test('a directory with both layouts: open_clip semantics by default (pad 0), layout "hf" for transformers (pad 49407)', () => {
  const dir = tmp();
  const { vocab, merges } = hfFiles();
  writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify({ model: { type: 'BPE', vocab, merges } }));
  writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(TOKENIZER_CONFIG));
  writeFileSync(path.join(dir, 'open_clip_config.json'), JSON.stringify({ model_cfg: { text_cfg: { context_length: 77 } } }));
  const oc = loadTokenizer(dir);
  const hf = loadTokenizer(dir, { layout: 'hf' });
  assert.equal(oc.padId, 0);
  assert.equal(hf.padId, 49407);
  const a = Array.from(oc.encodeRow('a photo of a cat'));
  const b = Array.from(hf.encodeRow('a photo of a cat'));
  assert.deepEqual(a.slice(0, 7), b.slice(0, 7));
  assert.deepEqual(a.slice(7), new Array(70).fill(0));
  assert.deepEqual(b.slice(7), new Array(70).fill(49407));
  writeFileSync(path.join(dir, 'open_clip_config.json'), JSON.stringify({ model_cfg: { text_cfg: { hf_tokenizer_name: 'bert-base-uncased' } } }));
  assert.equal(loadTokenizer(dir).padId, 49407); // open_clip's HFTokenizer: the HF files decide
  const bare = tmp();
  writeFileSync(path.join(bare, 'open_clip_config.json'), JSON.stringify({ model_cfg: { text_cfg: { hf_tokenizer_name: 'bert-base-uncased' } } }));
  assert.throws(() => loadTokenizer(bare), /uses the Hugging Face tokenizer "bert-base-uncased"; put its tokenizer\.json in/);
  writeFileSync(path.join(bare, 'open_clip_config.json'), JSON.stringify({ model_cfg: { text_cfg: { vocab_size: 1000 } } }));
  assert.throws(() => loadTokenizer(bare), /Expected text vocab_size 49408 .* but received 1000/);
});
