/**
 * Loading and saving a masked autoencoder directory in either layout:
 * - facebookresearch/mae: `mae_config.json` (MaskedAutoencoderViT's arguments) + `model.safetensors`
 *   with models_mae.py's state_dict names (`cls_token`, `pos_embed`, `blocks.*`, `decoder_*`).
 * - Hugging Face ViTMAEForPreTraining: `config.json` (model_type "vit_mae") + `model.safetensors`
 *   with transformers' names (`vit.embeddings.*`, `vit.encoder.layer.*`, `decoder.*`; q, k, v split),
 *   mapped key by key as transformers' convert_vit_mae_to_pytorch.py relates the two.
 * The fixed sin-cos position embeddings are checked against MAE's table when the file holds them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { makeDirs, writeFileAtomic } from '../io/files.js';
import path from 'node:path';
import { VitkitError, shapeStr } from '../errors.js';
import { readSafetensors, writeSafetensors, type SafetensorsFile, type StTensorIn } from '../io/safetensors.js';
import type { Backend } from '../backend/backend.js';
import { type MaeConfig, encoderVitConfig, maeConfigFromHf, resolveMaeConfig } from './config.js';
import { VisionTransformer } from '../models/vit.js';
import { Rng } from '../data/rng.js';
import { MaskedAutoencoder } from './model.js';
import { announceDevice, hostDevice } from '../backend/devices.js';

export const MAE_CONFIG_FILE = 'mae_config.json';

/** Does this directory hold an MAE checkpoint (either layout)? */
export function isMaeDir(dir: string): boolean {
  if (existsSync(path.join(dir, MAE_CONFIG_FILE))) return true;
  const cfg = path.join(dir, 'config.json');
  if (!existsSync(cfg)) return false;
  try {
    const raw = JSON.parse(readFileSync(cfg, 'utf8')) as Record<string, unknown>;
    return raw['model_type'] === 'vit_mae';
  } catch {
    return false;
  }
}

/** HF ViTMAE tensor name(s) of one MAE tensor; q/k/v parts for a fused qkv */
export function hfNamesOf(name: string): string[] {
  let m = /^(blocks|decoder_blocks)\.(\d+)\.(.+)$/.exec(name);
  if (m) {
    const stack = m[1] === 'blocks' ? 'vit.encoder.layer' : 'decoder.decoder_layers';
    const pre = `${stack}.${m[2]}.`, rest = m[3]!;
    const qkv = /^attn\.qkv\.(weight|bias)$/.exec(rest);
    if (qkv) return ['query', 'key', 'value'].map((p) => `${pre}attention.attention.${p}.${qkv[1]}`);
    const map: Record<string, string> = {
      'norm1': 'layernorm_before', 'norm2': 'layernorm_after', 'attn.proj': 'attention.output.dense',
      'mlp.fc1': 'intermediate.dense', 'mlp.fc2': 'output.dense',
    };
    m = /^(.+)\.(weight|bias)$/.exec(rest);
    if (m && map[m[1]!]) return [`${pre}${map[m[1]!]}.${m[2]}`];
    throw new VitkitError(`No Hugging Face name for MAE tensor ${name}`);
  }
  const top: Record<string, string> = {
    'cls_token': 'vit.embeddings.cls_token', 'pos_embed': 'vit.embeddings.position_embeddings',
    'mask_token': 'decoder.mask_token', 'decoder_pos_embed': 'decoder.decoder_pos_embed',
    'patch_embed.proj.weight': 'vit.embeddings.patch_embeddings.projection.weight',
    'patch_embed.proj.bias': 'vit.embeddings.patch_embeddings.projection.bias',
    'norm.weight': 'vit.layernorm.weight', 'norm.bias': 'vit.layernorm.bias',
  };
  if (top[name]) return [top[name]!];
  m = /^(decoder_embed|decoder_norm|decoder_pred)\.(weight|bias)$/.exec(name);
  if (m) return [`decoder.${name}`];
  throw new VitkitError(`No Hugging Face name for MAE tensor ${name}`);
}

function readJson(file: string): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new VitkitError(`Cannot read ${file}: ${(e as Error).message}`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new VitkitError(`${file}: expected a JSON object`);
  return raw as Record<string, unknown>;
}

/** The config of an MAE directory and which layout it is in. */
export function readMaeConfig(dir: string): { config: MaeConfig; layout: 'mae' | 'hf' } {
  const own = path.join(dir, MAE_CONFIG_FILE);
  if (existsSync(own)) return { config: resolveMaeConfig(readJson(own), own), layout: 'mae' };
  const hf = path.join(dir, 'config.json');
  if (!existsSync(hf)) throw new VitkitError(`${dir}: no ${MAE_CONFIG_FILE} or config.json (an MAE checkpoint directory has one)`);
  const raw = readJson(hf);
  if (raw['model_type'] !== 'vit_mae') {
    throw new VitkitError(`${hf}: expected model_type "vit_mae" (ViTMAEForPreTraining) but received ${JSON.stringify(raw['model_type'] ?? null)}`);
  }
  return { config: maeConfigFromHf(raw, hf), layout: 'hf' };
}

/** The names of the decoder's tensors (what an encoder-only checkpoint lacks). */
const isDecoderName = (n: string) => n === 'mask_token' || n.startsWith('decoder_');

/** Load an MAE checkpoint directory (either layout). Needs the decoder: an encoder-only file is refused by name. */
export function loadMae(dir: string, backend?: Backend): MaskedAutoencoder {
  const { config, layout } = readMaeConfig(dir);
  const file = path.join(dir, 'model.safetensors');
  if (!existsSync(file)) throw new VitkitError(`${dir}: no model.safetensors`);
  const st = readSafetensors(file);
  const model = new MaskedAutoencoder(config, undefined, backend);
  const names = model.params.names();
  const missingDecoder = names.filter(isDecoderName).filter((n) => !hasTensor(st, layout, n));
  if (missingDecoder.length > 0) {
    throw new VitkitError(`${file} is an encoder-only checkpoint: it has no decoder weights (${missingDecoder[0]}${layout === 'hf' ? ` = ${hfNamesOf(missingDecoder[0]!)[0]}` : ''} missing); reconstruction and MAE pre-training need the full MaskedAutoencoderViT / ViTMAEForPreTraining checkpoint`);
  }
  for (const name of names) model.params.set(name, model.params.shape(name), readTensor(st, layout, name, model.params.shape(name)), file);
  // the fixed sin-cos tables: when present they must be MAE's
  for (const [name, table] of [['pos_embed', model.posEmbed], ['decoder_pos_embed', model.decoderPosEmbed]] as const) {
    if (!hasTensor(st, layout, name)) continue;
    const shape = [1, table.length / (name === 'pos_embed' ? config.embed_dim : config.decoder_embed_dim), name === 'pos_embed' ? config.embed_dim : config.decoder_embed_dim];
    const got = readTensor(st, layout, name, shape);
    let worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - table[i]!));
    if (worst > 1e-5) throw new VitkitError(`${file}: ${name} is not MAE's fixed 2-D sin-cos table (max difference ${worst.toExponential(2)}); vitkit's MAE keeps it fixed`);
  }
  announceDevice(hostDevice(model.backend)); // MAE runs on the host backend (the cpu device)
  return model;
}

function hasTensor(st: SafetensorsFile, layout: 'mae' | 'hf', name: string): boolean {
  return layout === 'mae' ? st.has(name) : hfNamesOf(name).every((n) => st.has(n));
}

function readTensor(st: SafetensorsFile, layout: 'mae' | 'hf', name: string, shape: number[]): Float32Array {
  const want = shape.reduce((a, b) => a * b, 1);
  const names = layout === 'mae' ? [name] : hfNamesOf(name);
  const parts = names.map((n) => {
    if (!st.has(n)) throw new VitkitError(`${st.path}: missing tensor ${n}${layout === 'hf' ? ` (MAE ${name})` : ''}`);
    return st.f32(n);
  });
  if (parts.length === 3) {
    // q, k, v (w, ...) each -> qkv (3w, ...)
    const each = want / 3, partShape = [shape[0]! / 3, ...shape.slice(1)];
    const out = new Float32Array(want);
    parts.forEach((p, i) => {
      if (p.data.length !== each || p.shape.length !== partShape.length || p.shape.some((d, j) => d !== partShape[j])) {
        throw new VitkitError(`Wrong shape for tensor ${names[i]} in ${st.path}: expected ${shapeStr(partShape)} but received ${shapeStr(p.shape)}`);
      }
      out.set(p.data, i * each);
    });
    return out;
  }
  const p = parts[0]!;
  if (p.shape.length !== shape.length || p.shape.some((d, j) => d !== shape[j])) {
    throw new VitkitError(`Wrong shape for tensor ${names[0]} in ${st.path}: expected ${shapeStr(shape)} but received ${shapeStr(p.shape)}`);
  }
  return p.data;
}

/** Save in facebookresearch/mae's layout: mae_config.json + model.safetensors (with the fixed pos tables), atomically. */
export function saveMae(model: MaskedAutoencoder, dir: string, opts: { overwrite?: boolean } = {}): void {
  const cfg = path.join(dir, MAE_CONFIG_FILE), weights = path.join(dir, 'model.safetensors');
  for (const f of [cfg, weights]) if (existsSync(f) && !opts.overwrite) throw new VitkitError(`Refusing to overwrite existing file ${f}: pass --overwrite to replace it`);
  makeDirs(dir, 'MAE checkpoint folder');
  const c = model.config;
  const tensors: Record<string, StTensorIn> = {};
  tensors['pos_embed'] = { shape: [1, 1 + model.L, c.embed_dim], data: model.posEmbed };
  tensors['decoder_pos_embed'] = { shape: [1, 1 + model.L, c.decoder_embed_dim], data: model.decoderPosEmbed };
  for (const n of model.params.names()) tensors[n] = { shape: model.params.shape(n), data: model.params.get(n) };
  writeSafetensors(weights, tensors, { format: 'pt' }, { overwrite: opts.overwrite ?? false });
  writeFileAtomic(cfg, JSON.stringify(c, null, 1) + '\n', { overwrite: opts.overwrite ?? false, what: 'MAE config' });
}

/**
 * The pre-trained encoder as a timm VisionTransformer classifier, as MAE's fine-tuning builds it
 * (models_vit.py with global_pool): the encoder's cls_token, pos_embed (MAE's fixed table becomes
 * the learned one), patch_embed and blocks; the final `norm` is replaced by `fc_norm` over the
 * average of the patch tokens (fresh: weight 1, bias 0); a new head (normal std 2e-5, bias 0, as
 * MAE's trunc_normal_(head.weight, std=2e-5)). Works on encoder-only checkpoints too.
 */
export function loadMaeEncoderAsVit(dir: string, numClasses: number, seed: number, backend?: Backend): VisionTransformer {
  const { config, layout } = readMaeConfig(dir);
  const file = path.join(dir, 'model.safetensors');
  if (!existsSync(file)) throw new VitkitError(`${dir}: no model.safetensors`);
  const st = readSafetensors(file);
  const vc = encoderVitConfig(config, numClasses);
  const vit = new VisionTransformer(vc, undefined, backend);
  const mae = new MaskedAutoencoder(config);
  for (const name of vit.params.names()) {
    const p = vit.params.get(name);
    if (name === 'pos_embed') {
      p.set(hasTensor(st, layout, name) ? readTensor(st, layout, name, vit.params.shape(name)) : mae.posEmbed);
    } else if (name === 'fc_norm.weight') {
      p.fill(1);
    } else if (name === 'fc_norm.bias' || name === 'head.bias') {
      p.fill(0);
    } else if (name === 'head.weight') {
      const rng = new Rng(seed);
      for (let i = 0; i < p.length; i++) p[i] = 2e-5 * rng.normal();
    } else {
      p.set(readTensor(st, layout, name, vit.params.shape(name)));
    }
  }
  return vit;
}
