/** `vitkit tokenize` end to end in a child process. Expected ids are open_clip's (openclip_clip/ref.safetensors prompts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { vitkit, assertUserError, tmp } from '../helpers.js';

// open_clip 2.24: tokenizer(["a photo of a cat", "a diagram"]) (leading ids; the rest are 0)
const CAT = [49406, 320, 1125, 539, 320, 2368, 49407];
const DIAGRAM = [49406, 320, 22697, 49407];
const pad = (ids: number[], L: number, p = 0) => [...ids, ...new Array<number>(L - ids.length).fill(p)];

test('vitkit tokenize: one line of 77 ids per text, default OpenAI vocabulary', () => {
  const r = vitkit('tokenize', 'a photo of a cat', 'a diagram');
  assert.equal(r.code, 0, r.err);
  const lines = r.out.trim().split('\n');
  assert.equal(lines.length, 2);
  assert.deepEqual(lines[0]!.split(' ').map(Number), pad(CAT, 77));
  assert.deepEqual(lines[1]!.split(' ').map(Number), pad(DIAGRAM, 77));
});

test('vitkit tokenize --json --file (after argument texts), --context-length', () => {
  const dir = tmp();
  const f = path.join(dir, 'texts.json');
  writeFileSync(f, JSON.stringify(['a diagram']));
  const r = vitkit('tokenize', '--json', '--context-length', '10', '--file', f, 'a photo of a cat');
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out) as { context_length: number; pad_id: number; input_ids: number[][] };
  assert.equal(j.context_length, 10);
  assert.equal(j.pad_id, 0);
  assert.deepEqual(j.input_ids, [pad(CAT, 10), pad(DIAGRAM, 10)]);
});

test('vitkit tokenize --model: an open_clip hub directory takes its context length', () => {
  const dir = tmp();
  writeFileSync(path.join(dir, 'open_clip_config.json'), JSON.stringify({ model_cfg: { text_cfg: { context_length: 6 } } }));
  const r = vitkit('tokenize', '--model', dir, 'a diagram');
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(r.out.trim().split(' ').map(Number), pad(DIAGRAM, 6));
});

test('vitkit tokenize: malformed command lines exit 2, bad inputs exit 1 with one line', () => {
  const none = vitkit('tokenize');
  assert.equal(none.code, 2);
  assert.match(none.err, /give texts to tokenize or --file/);
  const unknown = vitkit('tokenize', '--bogus', 'x');
  assert.equal(unknown.code, 2);
  const layout = vitkit('tokenize', '--layout', 'timm', 'x');
  assert.equal(layout.code, 2);
  assert.match(layout.err, /Expected open_clip or hf for --layout but received "timm"/);
  const dir = tmp();
  assertUserError(vitkit('tokenize', '--file', path.join(dir, 'missing.json')), /missing\.json does not exist \(ENOENT\)/);
  const notArray = path.join(dir, 'obj.json');
  writeFileSync(notArray, '{"a": 1}');
  assertUserError(vitkit('tokenize', '--file', notArray), /Expected a JSON array of strings in .*obj\.json but received object/);
  const notStrings = path.join(dir, 'nums.json');
  writeFileSync(notStrings, '["ok", 3]');
  assertUserError(vitkit('tokenize', '--file', notStrings), /Expected a string for item 1 of .*nums\.json but received 3/);
  assertUserError(vitkit('tokenize', '--model', dir, 'x'), /No tokenizer in/);
  assertUserError(vitkit('tokenize', '--context-length', '1', 'x'), /--context-length/);
});
