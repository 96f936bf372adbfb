/**
 * Writes the fuzz seed corpus (fuzz/corpus/, committed): small valid inputs for each target.
 * Regenerate with `npx tsc -p tsconfig.json && node dist/fuzz/make_corpus.js`; the files are
 * deterministic. Regression inputs found by the fuzzer are added beside them by hand.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { serializeSafetensors } from '../src/io/safetensors.js';
import { initWeights, saveCheckpoint, timmConfigJson } from '../src/checkpoint/checkpoint.js';
import { resolveConfig } from '../src/models/config.js';
import { VisionTransformer } from '../src/models/vit.js';
import { CORPUS } from './fuzz.js';

const dir = (t: string) => {
  const d = path.join(CORPUS, t);
  mkdirSync(d, { recursive: true });
  return d;
};

const st = dir('safetensors');
writeFileSync(path.join(st, 'mixed.safetensors'), serializeSafetensors({
  a: { shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 0, 1e-3, -7]) },
  h: { dtype: 'F16', shape: [4], data: Float32Array.from([1, 0.5, -2, 65504]) },
  b: { dtype: 'BF16', shape: [2], data: Float32Array.from([3, -1]) },
  i: { shape: [3], data: BigInt64Array.from([0n, -5n, 9n]) },
  j: { shape: [2], data: Int32Array.from([7, -7]) },
  e: { shape: [0, 2], data: new Float32Array(0) },
}, { format: 'pt', note: 'fuzz seed' }));
writeFileSync(path.join(st, 'xy.safetensors'), serializeSafetensors({
  x: { shape: [4, 1, 4, 4], data: Float32Array.from({ length: 64 }, (_, i) => Math.sin(i)) },
  y: { shape: [4], data: BigInt64Array.from([0n, 1n, 2n, 1n]) },
}));
writeFileSync(path.join(st, 'empty.safetensors'), serializeSafetensors({}));

const cfg = resolveConfig({ img_size: 16, patch_size: 8, embed_dim: 8, depth: 1, num_heads: 2, num_classes: 3, mlp_ratio: 2 });
const c = dir('config');
writeFileSync(path.join(c, 'timm.config.json'), JSON.stringify(timmConfigJson('vit_custom', cfg, { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], crop_pct: 0.9, interpolation: 'bicubic' }, ['a', 'b', 'c'])));
writeFileSync(path.join(c, 'timm-preset.config.json'), JSON.stringify({ architecture: 'vit_tiny_patch16_224', num_classes: 10, model_args: { img_size: 32 }, pretrained_cfg: { input_size: [3, 32, 32] } }));
writeFileSync(path.join(c, 'hf.config.json'), JSON.stringify({
  architectures: ['ViTForImageClassification'], model_type: 'vit', hidden_size: 8, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 16,
  hidden_act: 'gelu', image_size: 16, patch_size: 8, num_channels: 3, qkv_bias: true, layer_norm_eps: 1e-12, id2label: { 0: 'a', 1: 'b' }, label2id: { a: 0, b: 1 },
}));
writeFileSync(path.join(c, 'preprocessor.config.json'), JSON.stringify({
  do_normalize: true, do_rescale: true, do_resize: true, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5], resample: 2, rescale_factor: 1 / 255, size: { height: 32, width: 32 },
}));
writeFileSync(path.join(c, 'preprocessor-crop.config.json'), JSON.stringify({
  do_resize: true, size: { shortest_edge: 36 }, do_center_crop: true, crop_size: { height: 32, width: 32 }, image_processor_type: 'ViTImageProcessorPil',
}));
writeFileSync(path.join(c, 'pretrained.config.json'), JSON.stringify({ input_size: [3, 32, 32], mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], crop_pct: 0.875, crop_mode: 'center', interpolation: 'bicubic' }));

const im = dir('image');
const px = Buffer.from(Array.from({ length: 8 * 6 * 3 }, (_, i) => (i * 37) % 256));
const raw = { raw: { width: 8, height: 6, channels: 3 as const } };
await sharp(px, raw).png().toFile(path.join(im, 'rgb.png'));
await sharp(px, raw).jpeg({ quality: 80 }).toFile(path.join(im, 'rgb.jpg'));
await sharp(px, raw).webp({ lossless: true }).toFile(path.join(im, 'rgb.webp'));
await sharp(px, raw).gif().toFile(path.join(im, 'rgb.gif'));
await sharp(px, raw).tiff().toFile(path.join(im, 'rgb.tiff'));
await sharp(px, raw).ensureAlpha(0.5).png().toFile(path.join(im, 'rgba.png'));
await sharp(px, raw).grayscale().png().toFile(path.join(im, 'gray.png'));
await sharp(px, raw).png().withMetadata({ orientation: 6 }).toFile(path.join(im, 'rot.png'));
await sharp(px, raw).jpeg().withMetadata({ orientation: 8 }).toFile(path.join(im, 'rot.jpg'));

const ck = dir('checkpoint');
const m = new VisionTransformer(cfg);
initWeights(m, 5);
saveCheckpoint(ck, m, { name: 'vit_custom', pretrainedCfg: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], crop_pct: 1 }, labels: ['a', 'b', 'c'] }, { overwrite: true });
console.log(`corpus written to ${CORPUS}`);
