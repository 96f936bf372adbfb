/**
 * CLIP's tokenizer against open_clip 2.24 (../shared/refs/clip_tokenizer.safetensors, copied into
 * test/fixtures/clip so a fresh clone checks it; ../shared/refs/openclip_clip/ref.safetensors for the
 * four CLIP prompts). Every id must match.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { readSafetensors } from '../../src/io/safetensors.js';
import { clipTokenizer, openAiVocabText } from '../../src/node/text.js';
import { openAiTokenizer } from '../../src/text/vocab.js';
import { bytesToUnicode, toInt64 } from '../../src/text/bpe.js';
import { VitkitError } from '../../src/errors.js';
import { FIXTURES, REFS, needRefs } from '../helpers.js';

const TOK_REF = path.join(FIXTURES, 'clip', 'clip_tokenizer.safetensors');
const CLIP_REF = path.join(REFS, 'openclip_clip', 'ref.safetensors');

function rows(ids: BigInt64Array, L: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < ids.length / L; i++) out.push(Array.from(ids.subarray(i * L, (i + 1) * L), Number));
  return out;
}

test('open_clip parity: 24 awkward strings (unicode, emoji, punctuation, <start_of_text>, over-long), every id', (t) => {
  if (!needRefs(t, TOK_REF)) return;
  const ref = readSafetensors(TOK_REF);
  const texts = JSON.parse(ref.metadata['texts']!) as string[];
  const want = ref.i64('input_ids');
  assert.deepEqual(want.shape, [24, 77]);
  assert.equal(texts.length, 24);
  const tok = clipTokenizer();
  const { ids, shape } = tok.tokenize(texts);
  assert.deepEqual(shape, [24, 77]);
  const got = rows(toInt64(ids), 77);
  const exp = rows(want.data, 77);
  for (let i = 0; i < texts.length; i++) assert.deepEqual(got[i], exp[i], `text ${i} ${JSON.stringify(texts[i]).slice(0, 60)}`);
  // the cases the file is there for are really in it
  assert.ok(texts.includes('<start_of_text>'));
  assert.ok(exp.some((r) => r[76] === 49407 && r[75] !== 0), 'an over-long row truncated with the end token last');
});

test('open_clip parity: the four CLIP prompts of openclip_clip/ref.safetensors', (t) => {
  if (!needRefs(t, CLIP_REF)) return;
  const want = readSafetensors(CLIP_REF).i64('input_ids');
  assert.deepEqual(want.shape, [4, 77]);
  const { ids } = clipTokenizer().tokenize(['a photo of a cat', 'a photo of an astronaut', 'a cup of coffee', 'a diagram']);
  assert.deepEqual(rows(toInt64(ids), 77), rows(want.data, 77));
});

test('vocabulary layout: 256 bytes, 256 with </w>, 48894 merges, then <start_of_text> 49406 and <end_of_text> 49407', () => {
  const tok = clipTokenizer();
  assert.equal(tok.vocabSize, 49408);
  assert.equal(tok.bosId, 49406);
  assert.equal(tok.eosId, 49407);
  assert.equal(tok.padId, 0);
  const bu = bytesToUnicode();
  assert.equal(new Set(bu).size, 256);
  assert.equal(bu[0x41], 'A');
  assert.equal(bu[0x20], '\u0120'); // space is the 33rd non-printable byte -> 256 + 32
  // vocab order is bytes_to_unicode's: "!" (0x21) first -> "!</w>" is 256; "a" is the 65th -> 320
  assert.deepEqual(tok.encode('!'), [256]);
  assert.deepEqual(tok.encode('a'), [320]);
});

test('truncation keeps the end token last; zero padding; a custom context length', () => {
  const tok = clipTokenizer();
  const long = 'a '.repeat(200);
  const r = tok.encodeRow(long);
  assert.equal(r.length, 77);
  assert.equal(r[0], 49406);
  assert.equal(r[76], 49407);
  assert.ok(r.subarray(1, 76).every((v) => v === 320));
  const short = tok.encodeRow('a diagram', 10);
  assert.equal(short.length, 10);
  const n = tok.encode('a diagram').length;
  assert.equal(short[n + 1], 49407);
  assert.ok(short.subarray(n + 2).every((v) => v === 0));
  const two = tok.encodeRow('a photo of a cat', 2);
  assert.deepEqual(Array.from(two), [49406, 49407]);
  assert.throws(() => tok.tokenize(['x'], 1), VitkitError);
  assert.throws(() => tok.tokenize([3 as unknown as string]), /Expected a string for text 0/);
});

test('cleaning: case, whitespace runs, HTML entities (twice unescaped), curly quotes, fullwidth, ligatures', () => {
  const tok = clipTokenizer();
  const same = (a: string, b: string) => assert.deepEqual(tok.encode(a), tok.encode(b), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
  same('A Photo OF a CAT', 'a photo of a cat');
  same('  a\u3000photo\u00a0of \t a\ncat  ', 'a photo of a cat');
  same('fish &amp; chips', 'fish & chips');
  same('fish &amp;amp; chips', 'fish & chips'); // ftfy once + html.unescape twice
  same('it\u2019s', "it's");
  same('\uff21\uff22\uff23', 'abc');
  same('\ufb01sh', 'fish');
  same('caf\u0065\u0301', 'caf\u00e9'); // NFC
  same('&lt;start_of_text&gt;', '<start_of_text>');
  assert.deepEqual(tok.encode('<start_of_text>'), [49406]);
  assert.deepEqual(tok.encode('<END_OF_TEXT>'), [49407]);
  assert.notDeepEqual(tok.encode('fish & chips'), tok.encode('fish chips'));
});

test('a vocabulary that is too short is a VitkitError naming the file', () => {
  assert.throws(() => openAiTokenizer('#version\ni n\n', { source: 'tiny.txt' }), /tiny\.txt has 2 merge lines; expected at least 48894/);
});

test('speed: 10k short captions', () => {
  const tok = openAiTokenizer(openAiVocabText()); // a fresh tokenizer: cold cache
  const words = ['photo', 'dog', 'cat', 'red', 'bicycle', 'street', 'man', 'woman', 'running', 'beach', 'sunset', 'table', 'coffee', 'green', 'tree'];
  const caps: string[] = [];
  for (let i = 0; i < 10_000; i++) caps.push(`a ${words[i % 15]} of a ${words[(i * 7) % 15]} near the ${words[(i * 11) % 15]} ${i}`);
  const t0 = performance.now();
  const { ids } = tok.tokenize(caps);
  const ms = performance.now() - t0;
  assert.equal(ids.length, 10_000 * 77);
  console.log(`# tokenize 10k captions: ${ms.toFixed(0)} ms`);
  assert.ok(ms < 5000, `10k captions took ${ms} ms`);
});

test('open_clip parity on 1000 random awkward strings (test/fixtures/clip/fuzz_openclip.json, made by make_fuzz.py)', () => {
  const file = path.join(FIXTURES, 'clip', 'fuzz_openclip.json');
  const { cases } = JSON.parse(readFileSync(file, 'utf8')) as { cases: Array<[string, number[]]> };
  assert.ok(cases.length >= 900);
  const tok = clipTokenizer();
  let bad = 0;
  for (const [text, ids] of cases) {
    if (JSON.stringify(tok.encode(text)) !== JSON.stringify(ids)) bad++;
  }
  assert.equal(bad, 0, `${bad} of ${cases.length} strings tokenize differently from open_clip`);
});

test('decode inverts encode up to cleaning, as open_clip decode does', () => {
  const tok = clipTokenizer();
  assert.equal(tok.decode(tok.encode('A photo of a CAT.')), 'a photo of a cat . ');
  assert.equal(tok.decode(tok.encode('Zürich 日本語 😀')), 'zürich 日本語 😀 ');
  assert.equal(tok.decode([49406, 320, 49407]), '<start_of_text>a <end_of_text>');
  assert.throws(() => tok.decode([49408]), /Expected token ids in \[0, 49408\) but received 49408 at position 0/);
});
