/**
 * Issue 17 §3 item 7: small defects, each a one-line refusal now.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { FIXTURES, tmp, vitkit } from '../helpers.js';
import { shapeStr, VitkitError } from '../../src/errors.js';
import { preprocessFromHf } from '../../src/io/preprocess_pixels.js';
import { loadModel, saveCheckpoint } from '../../src/checkpoint/checkpoint.js';
import { readClipIndex, INDEX_FORMAT } from '../../src/clip/image_index.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { Tensor } from '../../src/tensor.js';
import { closeSessions, session } from '../../src/node/inference.js';

const HF_DIR = path.join(FIXTURES, 'hf_vit_small');

after(async () => { await closeSessions(); });

function usage(r: ReturnType<typeof vitkit>, re: RegExp): void {
  assert.equal(r.code, 2, `expected exit 2, got ${r.code}: ${r.err}`);
  assert.match(r.err, re);
  assert.equal(r.err.trim().split('\n').length, 1, r.err);
}

test('bad option values exit 2: train --task foo, run --outputs foo, zeroshot without labels, tokenize --context-length 1e9', () => {
  usage(vitkit('train', '--task', 'foo', '--model', 'vit_tiny_patch16_224', '--data', 'mnist'), /Expected --task classification, clip, detect or mae but received "foo"/);
  usage(vitkit('run', '-m', HF_DIR, '-i', 'x.safetensors', '-o', path.join(tmp(), 'y.safetensors'), '--outputs', 'foo'), /Unknown output "foo" in --outputs/);
  usage(vitkit('zeroshot', '-m', HF_DIR, 'x.png'), /Expected exactly one of --labels "a,b,c" or --labels-file <file>/);
  const t0 = Date.now();
  usage(vitkit('tokenize', '--context-length', '1000000000', 'a photo'), /Expected an integer in \[2, 77\] \(the model's context length\) for --context-length but received 1000000000/);
  assert.ok(Date.now() - t0 < 10_000);
  const ok = vitkit('tokenize', '--context-length', '16', 'a photo');
  assert.equal(ok.code, 0, ok.err);
  assert.equal(ok.out.trim().split(' ').length, 16);
});

test('a 10,000-dimension shape is abbreviated in messages', () => {
  const s = shapeStr(Array.from({ length: 10_000 }, (_, i) => i + 1));
  assert.equal(s, '(1, 2, 3, 4, ..., 9997, 9998, 9999, 10000) [10000 dimensions]');
  assert.equal(shapeStr([2, 3]), '(2, 3)');
});

test('image_std of 1e-300 (or 1e300) in a preprocessor config is refused, naming it', () => {
  assert.throws(() => preprocessFromHf({ image_std: [1e-300, 0.5, 0.5] }, 32, 3), (e: Error) => e instanceof VitkitError && /std values in \[1e-6, 1e6\].*\[0\].*1e-300/.test(e.message));
  assert.throws(() => preprocessFromHf({ image_std: [0.5, 1e300, 0.5] }, 32, 3), /\[1\]/);
  assert.doesNotThrow(() => preprocessFromHf({ image_std: [0.229, 0.224, 0.225] }, 32, 3));
});

test('a timm config with num_classes -1, or label_names of the wrong length, is refused', () => {
  const d = tmp();
  // a timm-layout checkpoint written by the library itself, then tampered
  const src = tmp();
  const lm = loadModel(HF_DIR);
  const timmDir = path.join(src, 'timm');
  saveCheckpoint(timmDir, lm.model, { name: 'vit_custom', pretrainedCfg: {} });
  const good = JSON.parse(readFileSync(path.join(timmDir, 'config.json'), 'utf8')) as Record<string, unknown>;
  const K = lm.model.config.num_classes;
  for (const [tamper, re] of [
    [{ ...good, num_classes: -1 }, /expected an integer in \[0, 16777216\] for "num_classes" but received -1/],
    [{ ...good, label_names: ['a', 'b'] }, new RegExp(`expected ${K} "label_names" \\(num_classes\\) but received 2`)],
  ] as const) {
    writeFileSync(path.join(d, 'config.json'), JSON.stringify(tamper));
    copyFileSync(path.join(timmDir, 'model.safetensors'), path.join(d, 'model.safetensors'));
    assert.throws(() => loadModel(d), (e: Error) => e instanceof VitkitError && re.test(e.message));
  }
});

test('a tampered CLIP index: NaN embeddings and a null entry are refused in one line', () => {
  const d = tmp();
  const files = [{ path: '/a.png', size: 1, mtimeMs: 1 }, { path: '/b.png', size: 1, mtimeMs: 1 }];
  const nan = path.join(d, 'nan.safetensors');
  writeSafetensors(nan, { embeds: { shape: [2, 2], data: new Float32Array([1, 0, NaN, 1]) } }, { format: INDEX_FORMAT, model: 'm', files: JSON.stringify(files) });
  assert.throws(() => readClipIndex(nan), /the embedding of \/b\.png has a non-finite value \(NaN\)/);
  const nul = path.join(d, 'null.safetensors');
  writeSafetensors(nul, { embeds: { shape: [2, 2], data: new Float32Array([1, 0, 0, 1]) } }, { format: INDEX_FORMAT, model: 'm', files: JSON.stringify([files[0], null]) });
  assert.throws(() => readClipIndex(nul), /expected \{"path", "size", "mtimeMs"\} for file 1 of the index but received null/);
});

test('classify(k = -1) and a NaN pixel tensor are refused', async () => {
  const s = await session(HF_DIR);
  await assert.rejects(s.classify([new Tensor([3, 32, 32], new Float32Array(3 * 32 * 32))], -1), /Expected an integer >= 1 for the top-k count of classify but received -1/);
  const px = new Float32Array(3 * 32 * 32);
  px[5] = NaN;
  await assert.rejects(s.classify([new Tensor([3, 32, 32], px)], 1), /Expected finite pixel_values for image 0 but element 5 is NaN/);
});

test('every --model help says that Hub ids work', () => {
  for (const cmd of ['predict', 'run', 'embed', 'eval', 'explain', 'fewshot', 'index', 'search', 'tokenize', 'train', 'zeroshot']) {
    const r = vitkit(cmd, '--help');
    assert.equal(r.code, 0, r.err);
    const help = r.out.replace(/\s+/g, ' ');
    assert.match(help, /--model <[^>]+> .*Hub repo org\/name\[@revision\]/, cmd);
  }
});
