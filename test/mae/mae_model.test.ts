/**
 * MaskedAutoencoderViT parity against facebookresearch/mae (test/fixtures/mae, a copy of
 * shared/refs/mae made with torch 1.13.1 and models_mae.py): with the reference's noise, mask and
 * ids_restore exact; latent, pred, reconstruction and pasted within 1e-4; loss within 1e-5
 * (shared/refs/README.md, mae/). The Hugging Face layout is checked on a ViTMAEForPreTraining file this
 * test converts from the reference with transformers' conversion key map
 * (convert_vit_mae_to_pytorch.py: rename_key's replacements in order, qkv split into query/key/value).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { FIXTURES, maxAbsDiff, tmp } from '../helpers.js';
import { readSafetensors, writeSafetensors, type StTensorIn } from '../../src/io/safetensors.js';
import { loadMae, saveMae } from '../../src/mae/load.js';
import { MaskedAutoencoder, maeSincosPosEmbed, normalizePatches, patchify, randomMasking, unpatchify } from '../../src/mae/model.js';
import { resolveMaeConfig } from '../../src/mae/config.js';
import { Rng } from '../../src/data/rng.js';

const DIR = path.join(FIXTURES, 'mae');
const ref = readSafetensors(path.join(DIR, 'ref.safetensors'));

function forwardRef(dir: string) {
  const model = loadMae(dir);
  const x = ref.f32('pixel_values');
  const out = model.forward(x.data, x.shape, { noise: ref.f32('noise').data });
  return { model, x, out, pics: model.pictures(x.data, out.pred, out.masking) };
}

function checkOutputs(r: ReturnType<typeof forwardRef>): string {
  const { out, pics } = r;
  assert.deepEqual([...out.masking.mask], [...ref.f32('mask').data], 'mask');
  assert.deepEqual([...out.masking.idsRestore], [...ref.i64('ids_restore').data].map(Number), 'ids_restore');
  const errs: Record<string, number> = {
    latent: maxAbsDiff(out.latent, ref.f32('latent').data),
    pred: maxAbsDiff(out.pred, ref.f32('pred').data),
    reconstruction: maxAbsDiff(pics.reconstruction, ref.f32('reconstruction').data),
    pasted: maxAbsDiff(pics.pasted, ref.f32('pasted').data),
  };
  for (const [k, e] of Object.entries(errs)) assert.ok(e <= 1e-4, `${k}: max abs error ${e} > 1e-4`);
  const lossErr = Math.abs(out.loss - ref.f32('loss').data[0]!);
  assert.ok(lossErr <= 1e-5, `loss ${out.loss} vs ${ref.f32('loss').data[0]}`);
  return Object.entries(errs).map(([k, e]) => `${k} ${e.toExponential(2)}`).join(', ') + `, loss ${lossErr.toExponential(2)}`;
}

test('MAE fixed 2-D sin-cos tables equal the reference file (get_2d_sincos_pos_embed, float64 then float32)', () => {
  const st = readSafetensors(path.join(DIR, 'model.safetensors'));
  const pe = st.f32('pos_embed'), de = st.f32('decoder_pos_embed');
  assert.ok(maxAbsDiff(maeSincosPosEmbed(4, 64), pe.data) <= 1e-7);
  assert.ok(maxAbsDiff(maeSincosPosEmbed(4, 48), de.data) <= 1e-7);
  // the class row is zero (cls_token=True) and row 1 + 5 (h 1, w 1) is not
  assert.deepEqual([...pe.data.subarray(0, 64)], new Array(64).fill(0));
});

test('random_masking: argsort of the noise, int(L (1 - ratio)) kept, ids_restore its inverse', () => {
  const noise = Float32Array.from([0.5, 0.1, 0.9, 0.3, 0.7, 0.2]);
  const m = randomMasking(noise, 1, 6, 0.5);
  assert.equal(m.K, 3);
  assert.deepEqual([...m.idsKeep], [1, 5, 3]);
  assert.deepEqual([...m.idsRestore], [3, 0, 5, 2, 4, 1]);
  assert.deepEqual([...m.mask], [1, 0, 1, 0, 1, 0]);
  // Python int(16 * (1 - 0.9)) = 1 (16 * 0.09999999999999998 = 1.5999999999999996)
  assert.equal(randomMasking(new Float32Array(16), 1, 16, 0.9).K, 1);
  assert.throws(() => randomMasking(noise, 1, 6, 1), /Expected a mask ratio in \[0, 1\) for the mask ratio but received 1/);
});

test('MAE forward = facebookresearch/mae with the given noise (mask, ids_restore exact; 1e-4; loss 1e-5)', (t) => {
  t.diagnostic(checkOutputs(forwardRef(DIR)));
});

test('the same model from a ViTMAEForPreTraining file converted by transformers\' key map gives the same outputs', (t) => {
  const src = readSafetensors(path.join(DIR, 'model.safetensors'));
  const cfg = JSON.parse(readFileSync(path.join(DIR, 'mae_config.json'), 'utf8')) as Record<string, number | boolean>;
  // convert_vit_mae_to_pytorch.py rename_key, replacement by replacement
  const renameKey = (n: string): string => {
    const rep = (a: string, b: string) => { n = n.replace(a, b); };
    if (n.includes('cls_token')) rep('cls_token', 'vit.embeddings.cls_token');
    if (n.includes('mask_token')) rep('mask_token', 'decoder.mask_token');
    if (n.includes('decoder_pos_embed')) rep('decoder_pos_embed', 'decoder.decoder_pos_embed');
    if (n.includes('pos_embed') && !n.includes('decoder')) rep('pos_embed', 'vit.embeddings.position_embeddings');
    if (n.includes('patch_embed.proj')) rep('patch_embed.proj', 'vit.embeddings.patch_embeddings.projection');
    if (n.includes('decoder_blocks')) rep('decoder_blocks', 'decoder.decoder_layers');
    if (n.includes('blocks')) rep('blocks', 'vit.encoder.layer');
    if (n.includes('attn.proj')) rep('attn.proj', 'attention.output.dense');
    if (n.includes('attn')) rep('attn', 'attention.self');
    if (n.includes('norm1')) rep('norm1', 'layernorm_before');
    if (n.includes('norm2')) rep('norm2', 'layernorm_after');
    if (n.includes('mlp.fc1')) rep('mlp.fc1', 'intermediate.dense');
    if (n.includes('mlp.fc2')) rep('mlp.fc2', 'output.dense');
    if (n.includes('decoder_embed')) rep('decoder_embed', 'decoder.decoder_embed');
    if (n.includes('decoder_norm')) rep('decoder_norm', 'decoder.decoder_norm');
    if (n.includes('decoder_pred')) rep('decoder_pred', 'decoder.decoder_pred');
    if (n.includes('norm.weight') && !n.includes('decoder')) rep('norm.weight', 'vit.layernorm.weight');
    if (n.includes('norm.bias') && !n.includes('decoder')) rep('norm.bias', 'vit.layernorm.bias');
    return n;
  };
  const out: Record<string, StTensorIn> = {};
  for (const key of src.keys()) {
    const v = src.f32(key);
    if (key.includes('qkv')) {
      const layer = key.split('.')[1];
      const dec = key.includes('decoder_blocks');
      const dim = (dec ? cfg['decoder_embed_dim'] : cfg['embed_dim']) as number;
      const prefix = dec ? 'decoder.decoder_layers.' : 'vit.encoder.layer.';
      const kind = key.endsWith('weight') ? 'weight' : 'bias';
      const row = kind === 'weight' ? dim : 1;
      ['query', 'key', 'value'].forEach((p, i) => {
        out[`${prefix}${layer}.attention.attention.${p}.${kind}`] = {
          shape: kind === 'weight' ? [dim, dim] : [dim], data: v.data.slice(i * dim * row, (i + 1) * dim * row),
        };
      });
    } else {
      out[renameKey(key)] = v;
    }
  }
  const dir = tmp();
  writeSafetensors(path.join(dir, 'model.safetensors'), out);
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({
    architectures: ['ViTMAEForPreTraining'], model_type: 'vit_mae', image_size: 32, patch_size: 8, num_channels: 3,
    hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 128,
    decoder_hidden_size: 48, decoder_num_hidden_layers: 2, decoder_num_attention_heads: 4, decoder_intermediate_size: 96,
    mask_ratio: 0.75, norm_pix_loss: false, layer_norm_eps: 1e-6, qkv_bias: true, hidden_act: 'gelu',
  }));
  assert.ok(Object.keys(out).includes('decoder.decoder_layers.1.attention.attention.value.bias'));
  assert.ok(Object.keys(out).includes('vit.encoder.layer.0.output.dense.weight'));
  t.diagnostic(checkOutputs(forwardRef(dir)));
});

test('save then load in the MAE layout round-trips every tensor; never overwrites without asking', () => {
  const model = loadMae(DIR);
  const dir = path.join(tmp(), 'mae');
  saveMae(model, dir);
  const back = loadMae(dir);
  assert.deepEqual(back.config, model.config);
  assert.equal(maxAbsDiff(back.params.buffer, model.params.buffer), 0);
  assert.throws(() => saveMae(model, dir), /Refusing to overwrite/);
});

test('bad input: encoder-only checkpoint, mask ratio, image size, config', () => {
  const src = readSafetensors(path.join(DIR, 'model.safetensors'));
  const enc: Record<string, StTensorIn> = {};
  for (const k of src.keys()) if (!k.startsWith('decoder') && k !== 'mask_token') enc[k] = src.f32(k);
  const dir = tmp();
  writeSafetensors(path.join(dir, 'model.safetensors'), enc);
  writeFileSync(path.join(dir, 'mae_config.json'), readFileSync(path.join(DIR, 'mae_config.json')));
  assert.throws(() => loadMae(dir), /is an encoder-only checkpoint: it has no decoder weights \(mask_token missing\)/);
  const model = loadMae(DIR);
  const x = ref.f32('pixel_values');
  assert.throws(() => model.forward(x.data, x.shape, { maskRatio: 1.2 }), /Expected a mask ratio in \[0, 1\) for the mask ratio but received 1.2/);
  assert.throws(() => model.forward(new Float32Array(2 * 3 * 30 * 30), [2, 3, 30, 30]), /Image size 30x30 \(pixel_values \(2, 3, 30, 30\)\) is not divisible by the patch size 8/);
  assert.throws(() => resolveMaeConfig({ img_size: 30, patch_size: 8 }, 'cfg'), /cfg: img_size 30 is not divisible by patch_size 8/);
  assert.throws(() => resolveMaeConfig({ mask_ratio: -0.1 }, 'cfg'), /Expected a mask ratio in \[0, 1\) for cfg.mask_ratio/);
});

test('seeded masking is reproducible and different seeds mask differently', () => {
  const model = loadMae(DIR);
  const x = ref.f32('pixel_values');
  const a = model.forward(x.data, x.shape, { rng: new Rng(7) }), b = model.forward(x.data, x.shape, { rng: new Rng(7) });
  const c = model.forward(x.data, x.shape, { rng: new Rng(8) });
  assert.deepEqual([...a.masking.idsRestore], [...b.masking.idsRestore]);
  assert.equal(a.loss, b.loss);
  assert.notDeepEqual([...a.masking.idsRestore], [...c.masking.idsRestore]);
  assert.equal(a.masking.mask.reduce((s, v) => s + v, 0), 2 * 12);
});

test('norm_pix_loss: per-patch (t - mean) / sqrt(var + 1e-6) with the unbiased variance; pictures undo it on visible patches', () => {
  const t = Float32Array.from([1, 2, 3, 4]);
  normalizePatches(t, 1, 4);
  const sd = Math.sqrt(5 / 3 + 1e-6); // var([1, 2, 3, 4], unbiased) = 5/3
  assert.ok(maxAbsDiff(t, [-1.5 / sd, -0.5 / sd, 0.5 / sd, 1.5 / sd]) <= 1e-7);
  const base = loadMae(DIR);
  const model = new MaskedAutoencoder({ ...base.config, norm_pix_loss: true }, base.params);
  const x = ref.f32('pixel_values');
  const out = model.forward(x.data, x.shape, { noise: ref.f32('noise').data });
  // the loss is against the normalised target
  const target = patchify(x.data, 2, 3, 32, 8);
  normalizePatches(target, 32, 192);
  let num = 0;
  for (let r = 0; r < 32; r++) if (out.masking.mask[r] === 1) for (let i = 0; i < 192; i++) num += (out.pred[r * 192 + i]! - target[r * 192 + i]!) ** 2 / 192;
  assert.ok(Math.abs(out.loss - num / 24) <= 1e-6);
  // a prediction equal to the normalised target reconstructs the visible patches exactly
  const pics = model.pictures(x.data, target, out.masking);
  const vis = unpatchify(Float32Array.from({ length: 32 * 192 }, (_, i) => 1 - out.masking.mask[Math.floor(i / 192)]!), 2, 3, 32, 8);
  let err = 0;
  for (let i = 0; i < vis.length; i++) if (vis[i] === 1) err = Math.max(err, Math.abs(pics.reconstruction[i]! - x.data[i]!));
  assert.ok(err <= 1e-5, `visible patches de-normalised: ${err}`);
});
