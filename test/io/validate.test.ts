/** A config is checked against its weights' header before anything is allocated; weights must be finite. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { VitkitError } from '../../src/errors.js';
import { initWeights, loadModel, saveCheckpoint } from '../../src/checkpoint/checkpoint.js';
import { resolveConfig } from '../../src/models/config.js';
import { VisionTransformer } from '../../src/models/vit.js';
import { readSafetensors, writeSafetensors, type StTensorIn } from '../../src/io/safetensors.js';
import { checkConfigAgainstEntries, checkConfigResources, checkFeatureShape } from '../../src/checkpoint/validate.js';
import type { StEntry } from '../../src/io/safetensors.js';
import { FIXTURES, tmp } from '../helpers.js';

const tiny = resolveConfig({ img_size: 32, patch_size: 8, embed_dim: 32, depth: 2, num_heads: 2, num_classes: 5 });

function checkpoint(): string {
  const dir = path.join(tmp(), 'ckpt');
  mkdirSync(dir);
  const m = new VisionTransformer(tiny);
  initWeights(m, 3);
  saveCheckpoint(dir, m, { name: 'vit_custom', pretrainedCfg: {} });
  return dir;
}

function editConfig(dir: string, edit: (args: Record<string, unknown>, cfg: Record<string, unknown>) => void): void {
  const f = path.join(dir, 'config.json');
  const cfg = JSON.parse(readFileSync(f, 'utf8')) as Record<string, unknown>;
  edit(cfg['model_args'] as Record<string, unknown>, cfg);
  writeFileSync(f, JSON.stringify(cfg));
}

function rejects(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof VitkitError, `expected VitkitError, got ${String(e)}`);
    assert.doesNotMatch(e.message, /\n/);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

test('depth 1e7 in config.json is refused at once, naming the blocks the weights hold', () => {
  const dir = checkpoint();
  editConfig(dir, (a) => { a['depth'] = 1e7; });
  const t0 = performance.now();
  rejects(() => loadModel(dir), /Expected depth 2/, /config\.json/, /2 blocks/, /received 10000000/);
  assert.ok(performance.now() - t0 < 2000, 'validation must not allocate the model first');
});

test('img_size 8192 is refused against pos_embed unless resampling is asked for', () => {
  const dir = checkpoint();
  editConfig(dir, (a) => { a['img_size'] = 8192; });
  rejects(() => loadModel(dir), /Expected img_size 32/, /pos_embed/, /\(1, 17, 32\)/, /received 8192/, /--img-size/);
  // asking for a size on purpose resamples, but is still bounded
  const ok = checkpoint();
  assert.equal(loadModel(ok, { imgSize: 48 }).model.config.img_size, 48);
  rejects(() => loadModel(ok, { imgSize: 8192 }), /tokens per image/, /at most 16384/, /1024x1024 grid/);
});

test('embed_dim, patch_size and num_classes must match the weights', () => {
  const d1 = checkpoint();
  editConfig(d1, (a) => { a['embed_dim'] = 64; });
  rejects(() => loadModel(d1), /Expected embed_dim 32/, /patch_embed\.proj\.weight/, /\(32, 3, 8, 8\)/, /received 64/);
  const d2 = checkpoint();
  editConfig(d2, (a, c) => { a['patch_size'] = 4; a['img_size'] = 16; c['num_classes'] = 5; });
  rejects(() => loadModel(d2), /Expected patch_size 8/, /received 4/);
  const d3 = checkpoint();
  editConfig(d3, (a, c) => { a['num_classes'] = 1000000; c['num_classes'] = 1000000; }); // model_args win over the top level, as in timm's create_model
  rejects(() => loadModel(d3), /Expected num_classes 5/, /head\.weight/, /received 1000000/);
  // a new head on purpose is fine
  assert.equal(loadModel(checkpoint(), { numClasses: 7 }).model.config.num_classes, 7);
});

test('the HF layout is checked the same way', () => {
  const src = path.join(FIXTURES, 'hf_vit_small');
  const dir = path.join(tmp(), 'hf');
  mkdirSync(dir);
  for (const f of ['model.safetensors', 'preprocessor_config.json']) writeFileSync(path.join(dir, f), readFileSync(path.join(src, f)));
  const cfg = JSON.parse(readFileSync(path.join(src, 'config.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...cfg, num_hidden_layers: 10000000 }));
  rejects(() => loadModel(dir), /Expected depth \d+/, /received 10000000/);
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...cfg, image_size: 8192 }));
  rejects(() => loadModel(dir), /Expected img_size/, /position_embeddings/, /received 8192/);
});

test('NaN or Inf in the weights is refused, naming the tensor and the first index', () => {
  const dir = checkpoint();
  const file = path.join(dir, 'model.safetensors');
  const st = readSafetensors(file);
  const tensors: Record<string, StTensorIn> = {};
  for (const k of st.keys()) tensors[k] = { shape: st.entry(k).shape, data: st.f32(k).data };
  tensors['blocks.1.mlp.fc1.weight']!.data[2 * 32 + 5] = NaN;
  writeSafetensors(file, tensors, { format: 'pt' }, { overwrite: true });
  rejects(() => loadModel(dir), /finite/, /"blocks\.1\.mlp\.fc1\.weight"/, /\(128, 32\)/, /NaN at index \[2, 5\]/);
  tensors['blocks.1.mlp.fc1.weight']!.data[2 * 32 + 5] = 0;
  tensors['norm.bias']!.data[3] = -Infinity;
  writeSafetensors(file, tensors, { format: 'pt' }, { overwrite: true });
  rejects(() => loadModel(dir), /"norm\.bias"/, /-Infinity at index \[3\]/);
  // a flipped exponent bit (found by the fuzzer): finite, but it overflows float32 in the first matmul
  tensors['norm.bias']!.data[3] = 0;
  tensors['blocks.0.attn.qkv.weight']!.data[159] = 2.8354867444892886e38;
  writeSafetensors(file, tensors, { format: 'pt' }, { overwrite: true });
  rejects(() => loadModel(dir), /magnitude at most 10000000000/, /"blocks\.0\.attn\.qkv\.weight"/, /\(96, 32\)/, /at index \[4, 31\]/);
});

test('a from-scratch config is bounded too', () => {
  rejects(() => checkConfigResources(resolveConfig({ depth: 1e7 }), 'big.json'), /depth of at most 1000/, /big\.json/, /received 10000000/);
  rejects(() => checkConfigResources(resolveConfig({ embed_dim: 16384, num_heads: 16, depth: 999 }), 'wide.json'), /parameters/, /wide\.json/);
  checkConfigResources(resolveConfig({}), 'vit-base'); // ViT-B/16 is fine
});

test('checkFeatureShape: features of the wrong width are an error', () => {
  checkFeatureShape([2, 5, 32], 32);
  rejects(() => checkFeatureShape([2, 5, 16], 32), /Expected features of shape \(B, N, 32\)/, /received \(2, 5, 16\)/);
});

test('two towers in one file (open_clip): depth and img_size must fit one of them', () => {
  const e = (shape: number[]): StEntry => ({ dtype: 'F32', shape, begin: 0, end: 0 });
  const entries = new Map<string, StEntry>([
    ['positional_embedding', e([77, 64])],
    ['visual.positional_embedding', e([17, 32])],
    ['visual.conv1.weight', e([32, 3, 8, 8])],
    ...[0, 1, 2].map((i) => [`transformer.resblocks.${i}.ln_1.weight`, e([64])] as [string, StEntry]),
    ...[0, 1].map((i) => [`visual.transformer.resblocks.${i}.ln_1.weight`, e([32])] as [string, StEntry]),
  ]);
  const c = resolveConfig({ img_size: 32, patch_size: 8, embed_dim: 32, depth: 2, num_heads: 2, num_classes: 0 });
  checkConfigAgainstEntries(c, entries, 'w.safetensors', 'c.json');
  rejects(() => checkConfigAgainstEntries({ ...c, depth: 5 }, entries, 'w.safetensors', 'c.json'), /Expected depth 3 or 2 in c\.json \(w\.safetensors holds blocks in groups of 3, 2\) but received 5/);
  rejects(() => checkConfigAgainstEntries({ ...c, img_size: 64 }, entries, 'w.safetensors', 'c.json'), /Expected img_size .* received 64, which needs 64 patch positions/);
});
