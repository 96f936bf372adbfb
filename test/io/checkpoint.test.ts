/** Checkpoint loading options: another image size resamples pos_embed as timm does; a new class count resets the head. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { mkdirSync, readFileSync } from 'node:fs';
import sharp from 'sharp';
import { loadModel, saveCheckpoint } from '../../src/checkpoint/checkpoint.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { loadImage } from '../../src/io/image.js';
import { Tensor } from '../../src/tensor.js';
import { REFS, FIXTURES, maxAbsDiff, tmp, needRefs } from '../helpers.js';

test('a timm checkpoint loaded at img_size 160 carries the pos_embed timm resamples to 10x10', (t) => {
  const ref = path.join(REFS, 'timm_vit_tiny_posembed_10.safetensors');
  if (!needRefs(t, ref)) return;
  const { model } = loadModel(path.join(REFS, 'timm_vit_tiny'), { imgSize: 160 });
  assert.deepEqual(model.params.shape('pos_embed'), [1, 101, 192]);
  const err = maxAbsDiff(model.params.get('pos_embed'), readSafetensors(ref).f32('resampled').data);
  assert.ok(err <= 1e-5, `pos_embed max abs diff ${err}`);
  assert.deepEqual(model.forward(new Tensor([1, 3, 160, 160])).shape, [1, 1000]);
});

test('HF checkpoint at another size and class count: prefix row kept, head reset, round trip through saveCheckpoint', () => {
  const src = path.join(FIXTURES, 'hf_vit_small');
  const orig = loadModel(src).model;
  const lm = loadModel(src, { imgSize: 96, numClasses: 3 });
  const pos = lm.model.params.get('pos_embed');
  assert.equal(pos.length, (1 + 12 * 12) * 96);
  assert.deepEqual([...pos.subarray(0, 96)], [...orig.params.get('pos_embed').subarray(0, 96)]); // class-token row unchanged
  assert.deepEqual(lm.model.params.shape('head.weight'), [3, 96]);
  assert.deepEqual(lm.labels, ['class_0', 'class_1', 'class_2']);
  assert.deepEqual([...lm.model.params.get('blocks.0.attn.qkv.weight')], [...orig.params.get('blocks.0.attn.qkv.weight')]);
  // saved in timm's layout, it loads back identically
  const dir = path.join(tmp(), 'ckpt');
  mkdirSync(dir);
  saveCheckpoint(dir, lm.model, { name: 'vit_custom', pretrainedCfg: {}, labels: ['a', 'b', 'c'] });
  const cfg = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
  assert.equal(cfg.model_args.img_size, 96);
  // timm's VisionTransformer has no layer_norm_eps kwarg: HF's 1e-12 travels in vitkit_args, which timm ignores
  assert.equal(cfg.model_args.layer_norm_eps, undefined);
  assert.equal(cfg.vitkit_args.layer_norm_eps, 1e-12);
  const back = loadModel(dir);
  assert.deepEqual(back.labels, ['a', 'b', 'c']);
  assert.deepEqual([...back.model.params.buffer], [...lm.model.params.buffer]);
  assert.throws(() => saveCheckpoint(dir, lm.model, { name: 'vit_custom', pretrainedCfg: {} }), /already exists|Refusing to overwrite/);
});

test('WebP decodes to the same pixels sharp encoded losslessly', async () => {
  const px = Buffer.from(Array.from({ length: 6 * 4 * 3 }, (_, i) => (i * 37) % 256));
  const webp = await sharp(px, { raw: { width: 6, height: 4, channels: 3 } }).webp({ lossless: true }).toBuffer();
  const img = await loadImage(new Uint8Array(webp), 3);
  assert.deepEqual([img.width, img.height, img.channels], [6, 4, 3]);
  assert.deepEqual([...img.data], [...px]);
});
