/**
 * YOLOS checkpoints in two layouts:
 * - hustvl/YOLOS: `yolos_config.json` (patch_size, embed_dim, depth, num_heads, mlp_ratio, qkv_bias,
 *   num_classes, det_token_num, init_pe_size, mid_pe_size, layer_norm_eps) and `model.safetensors`
 *   with the authors' names (backbone.*, class_embed.layers.*, bbox_embed.layers.*);
 * - Hugging Face YolosForObjectDetection: `config.json` (model_type "yolos": hidden_size,
 *   num_hidden_layers, num_attention_heads, intermediate_size, image_size, patch_size,
 *   num_detection_tokens, use_mid_position_embeddings, layer_norm_eps, id2label) and
 *   `model.safetensors` under transformers' names (vit.embeddings.*, vit.encoder.layer.* with
 *   separate query/key/value, vit.layernorm, class_labels_classifier, bbox_predictor), the names
 *   transformers' convert_yolos_to_pytorch.py gives hustvl's tensors; `preprocessor_config.json`
 *   (YolosImageProcessor) gives the resize and normalisation.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { VitkitError, shapeStr } from '../errors.js';
import type { Backend } from '../backend/backend.js';
import { readSafetensors, type SafetensorsFile } from '../io/safetensors.js';
import { parseJsonObject } from '../checkpoint/checkpoint_core.js';
import { Yolos, yolosVitConfig, type YolosConfig } from './yolos.js';
import { announceDevice, hostDevice } from '../backend/devices.js';

/** YolosImageProcessor's resize and normalisation (YOLOS's eval transform). */
export interface DetPreprocess {
  shortestEdge: number;
  longestEdge: number;
  /**
   * 'yolos': hustvl's eval transform (get_size_with_aspect_ratio; the conv then drops the pixels past a
   * multiple of the patch); 'hf': YolosImageProcessor's get_size_with_aspect_ratio_yolos (long side from
   * the unrounded size, both sides floored to multiples of 16)
   */
  sizeRule: 'yolos' | 'hf';
  mean: [number, number, number];
  std: [number, number, number];
}

export const YOLOS_DEFAULT_PREPROCESS: DetPreprocess = {
  shortestEdge: 800, longestEdge: 1333, sizeRule: 'yolos', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225],
};

export interface LoadedYolos {
  model: Yolos;
  format: 'hustvl' | 'hf';
  preprocess: DetPreprocess;
}

function readJson(file: string): Record<string, unknown> {
  return parseJsonObject(readFileSync(file, 'utf8'), file);
}

function num(o: Record<string, unknown>, k: string, file: string, dflt?: number): number {
  const v = o[k] ?? dflt;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new VitkitError(`${file}: expected a number for "${k}" but received ${JSON.stringify(v)}`);
  return v;
}

function pair(v: unknown, k: string, file: string): [number, number] {
  if (typeof v === 'number' && Number.isInteger(v) && v > 0) return [v, v];
  if (Array.isArray(v) && v.length === 2 && v.every((x) => Number.isInteger(x) && x > 0)) return [v[0] as number, v[1] as number];
  throw new VitkitError(`${file}: expected "${k}" a positive integer or [height, width] but received ${JSON.stringify(v)}`);
}

/** The hustvl name -> the Hugging Face tensors it is made of (qkv: query, key, value stacked on dim 0). */
export function yolosHfSources(name: string): string[] {
  const blk = /^backbone\.blocks\.(\d+)\.(.+)$/.exec(name);
  if (blk) {
    const [, i, rest] = blk;
    const L = `vit.encoder.layer.${i}.`;
    const qkv = /^attn\.qkv\.(weight|bias)$/.exec(rest!);
    if (qkv) return ['query', 'key', 'value'].map((p) => `${L}attention.attention.${p}.${qkv[1]}`);
    const map: Record<string, string> = {
      'norm1': 'layernorm_before', 'norm2': 'layernorm_after', 'attn.proj': 'attention.output.dense',
      'mlp.fc1': 'intermediate.dense', 'mlp.fc2': 'output.dense',
    };
    const m = /^(.+)\.(weight|bias)$/.exec(rest!);
    if (m && map[m[1]!]) return [`${L}${map[m[1]!]}.${m[2]}`];
    throw new VitkitError(`No Hugging Face name for ${name}`);
  }
  const top: Record<string, string> = {
    'backbone.cls_token': 'vit.embeddings.cls_token', 'backbone.det_token': 'vit.embeddings.detection_tokens',
    'backbone.pos_embed': 'vit.embeddings.position_embeddings', 'backbone.mid_pos_embed': 'vit.encoder.mid_position_embeddings',
    'backbone.patch_embed.proj.weight': 'vit.embeddings.patch_embeddings.projection.weight',
    'backbone.patch_embed.proj.bias': 'vit.embeddings.patch_embeddings.projection.bias',
    'backbone.norm.weight': 'vit.layernorm.weight', 'backbone.norm.bias': 'vit.layernorm.bias',
  };
  if (top[name]) return [top[name]!];
  const head = /^(class_embed|bbox_embed)\.(.+)$/.exec(name);
  if (head) return [`${head[1] === 'class_embed' ? 'class_labels_classifier' : 'bbox_predictor'}.${head[2]}`];
  throw new VitkitError(`No Hugging Face name for ${name}`);
}

/** Copy every tensor of `st` into the model (names through `sources`), checking shapes and that nothing is left over. */
function fill(model: Yolos, st: SafetensorsFile, sources: (name: string) => string[]): void {
  const used = new Set<string>();
  const c = model.config.vit;
  for (const name of model.params.names()) {
    const src = sources(name);
    const parts = src.map((s) => { used.add(s); return st.f32(s); });
    const want = model.params.shape(name);
    let shape = parts[0]!.shape, data = parts[0]!.data;
    if (parts.length > 1) {
      shape = [parts.reduce((a, p) => a + p.shape[0]!, 0), ...parts[0]!.shape.slice(1)];
      data = new Float32Array(parts.reduce((a, p) => a + p.data.length, 0));
      let off = 0;
      for (const p of parts) { data.set(p.data, off); off += p.data.length; }
    }
    if (name === 'backbone.mid_pos_embed' && (shape.length !== 4 || shape[2] !== want[2])) {
      throw new VitkitError(`${st.path}: ${src[0]} has shape ${shapeStr(shape)} but the mid position embeddings of ${want[0]} blocks over 1 class + ${want[2]! - 1 - c.det_tokens} patch positions + ${c.det_tokens} det tokens need ${shapeStr(want)} (hustvl's code sizes them for 100 det tokens)`);
    }
    if (name === 'backbone.pos_embed' && (shape.length !== 3 || shape[1] !== want[1])) {
      throw new VitkitError(`${st.path}: ${src[0]} has shape ${shapeStr(shape)} but 1 class + ${want[1]! - 1 - c.det_tokens} patch positions (the ${c.img_size} grid of patch ${c.patch_size}) + ${c.det_tokens} det tokens need ${shapeStr(want)}: the checkpoint's det-token count or image size does not fit its position embedding`);
    }
    model.params.set(name, shape, data, `${st.path} (${src.join(' + ')})`);
  }
  const extra = st.keys().filter((k) => !used.has(k));
  if (extra.length > 0) throw new VitkitError(`${st.path}: ${extra.length} tensors have no place in the YOLOS model (${extra.slice(0, 4).join(', ')}${extra.length > 4 ? ', ...' : ''})`);
}

function hfPreprocess(dir: string): DetPreprocess {
  const file = path.join(dir, 'preprocessor_config.json');
  if (!existsSync(file)) return { ...YOLOS_DEFAULT_PREPROCESS, sizeRule: 'hf' };
  const p = readJson(file);
  // {"size": {"shortest_edge", "longest_edge"}}, or the older {"size": 800, "max_size": 1333}
  const size = (typeof p['size'] === 'number' ? { shortest_edge: p['size'], longest_edge: p['max_size'] ?? 1333 } : p['size'] ?? {}) as Record<string, unknown>;
  const vec = (k: string, d: [number, number, number]): [number, number, number] => {
    const v = p[k];
    if (v === undefined) return d;
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number')) throw new VitkitError(`${file}: expected "${k}" a list of 3 numbers but received ${JSON.stringify(v)}`);
    return v as [number, number, number];
  };
  return {
    shortestEdge: num(size, 'shortest_edge', `${file} size`, 800), longestEdge: num(size, 'longest_edge', `${file} size`, 1333), sizeRule: 'hf',
    mean: vec('image_mean', YOLOS_DEFAULT_PREPROCESS.mean), std: vec('image_std', YOLOS_DEFAULT_PREPROCESS.std),
  };
}

/** Load a YOLOS directory (hustvl or Hugging Face layout, told apart by yolos_config.json / config.json). */
export function loadYolos(dir: string, backend?: Backend): LoadedYolos {
  const loaded = readYolos(dir, backend);
  announceDevice(hostDevice(loaded.model.backend)); // YOLOS runs on the host backend (the cpu device)
  return loaded;
}

function readYolos(dir: string, backend?: Backend): LoadedYolos {
  const weights = path.join(dir, 'model.safetensors');
  const hustvl = path.join(dir, 'yolos_config.json'), hf = path.join(dir, 'config.json');
  if (!existsSync(weights)) throw new VitkitError(`Expected ${weights} (a YOLOS checkpoint) but it does not exist`);
  if (existsSync(hustvl)) {
    const o = readJson(hustvl);
    const vit = yolosVitConfig({
      patch_size: num(o, 'patch_size', hustvl), embed_dim: num(o, 'embed_dim', hustvl), depth: num(o, 'depth', hustvl),
      num_heads: num(o, 'num_heads', hustvl), mlp_ratio: num(o, 'mlp_ratio', hustvl, 4), qkv_bias: o['qkv_bias'] !== false,
      pe_size: pair(o['init_pe_size'] ?? o['img_size'], 'init_pe_size', hustvl), det_tokens: num(o, 'det_token_num', hustvl),
      layer_norm_eps: num(o, 'layer_norm_eps', hustvl, 1e-6),
    }, hustvl);
    const K = num(o, 'num_classes', hustvl);
    const lab = o['labels'];
    if (lab !== undefined && !(Array.isArray(lab) && lab.length === K && lab.every((l) => typeof l === 'string'))) {
      throw new VitkitError(`${hustvl}: expected "labels" a list of ${K} class names but received ${JSON.stringify(lab).slice(0, 60)}`);
    }
    const mpe = o['mid_pe_size'] === undefined || o['mid_pe_size'] === null ? null : pair(o['mid_pe_size'], 'mid_pe_size', hustvl);
    const P = vit.patch_size;
    const config: YolosConfig = { vit, numClasses: K, labels: (lab as string[] | undefined) ?? null, midPe: mpe ? [Math.floor(mpe[0] / P), Math.floor(mpe[1] / P)] : null };
    const model = new Yolos(config, undefined, backend);
    fill(model, readSafetensors(weights), (n) => [n]);
    return { model, format: 'hustvl', preprocess: { ...YOLOS_DEFAULT_PREPROCESS } };
  }
  if (!existsSync(hf)) throw new VitkitError(`Expected ${hustvl} (hustvl/YOLOS) or ${hf} (Hugging Face YolosForObjectDetection) in ${dir} but found neither`);
  const o = readJson(hf);
  if (o['model_type'] !== 'yolos') throw new VitkitError(`${hf}: expected "model_type": "yolos" but received ${JSON.stringify(o['model_type'])}`);
  const midPe = o['use_mid_position_embeddings'] ?? true; // YolosConfig's default
  if (typeof midPe !== 'boolean') throw new VitkitError(`${hf}: expected use_mid_position_embeddings true or false but received ${JSON.stringify(midPe)}`);
  if ((o['hidden_act'] ?? 'gelu') !== 'gelu') throw new VitkitError(`${hf}: hidden_act ${JSON.stringify(o['hidden_act'])} is not supported (expected "gelu")`);
  const id2label = o['id2label'];
  let labels: string[] | null = null;
  if (id2label !== undefined && id2label !== null) {
    if (typeof id2label !== 'object' || Array.isArray(id2label)) throw new VitkitError(`${hf}: expected an object {"0": "name", ...} for "id2label"`);
    const m = id2label as Record<string, unknown>;
    const K = Object.keys(m).length;
    labels = Array.from({ length: K }, (_, i) => (typeof m[String(i)] === 'string' ? (m[String(i)] as string) : `class_${i}`));
  }
  const D = num(o, 'hidden_size', hf, 768);
  const vit = yolosVitConfig({
    patch_size: num(o, 'patch_size', hf, 16), embed_dim: D, depth: num(o, 'num_hidden_layers', hf, 12),
    num_heads: num(o, 'num_attention_heads', hf, 12), mlp_hidden: num(o, 'intermediate_size', hf, 3072), qkv_bias: o['qkv_bias'] !== false,
    pe_size: pair(o['image_size'] ?? [800, 1333], 'image_size', hf), det_tokens: num(o, 'num_detection_tokens', hf, 100),
    layer_norm_eps: num(o, 'layer_norm_eps', hf, 1e-12), in_chans: num(o, 'num_channels', hf, 3),
  }, hf);
  const numClasses = labels ? labels.length : num(o, 'num_labels', hf);
  const grid = vit.img_size as [number, number];
  const model = new Yolos({ vit, numClasses, labels, midPe: midPe ? [grid[0] / vit.patch_size, grid[1] / vit.patch_size] : null }, undefined, backend);
  fill(model, readSafetensors(weights), yolosHfSources);
  return { model, format: 'hf', preprocess: hfPreprocess(dir) };
}

/** true when `dir` holds a YOLOS checkpoint (hustvl's yolos_config.json, or a config.json of model_type "yolos") */
export function isYolosDir(dir: string): boolean {
  if (existsSync(path.join(dir, 'yolos_config.json'))) return true;
  const cfg = path.join(dir, 'config.json');
  if (!existsSync(cfg)) return false;
  try {
    return (JSON.parse(readFileSync(cfg, 'utf8')) as Record<string, unknown>)['model_type'] === 'yolos';
  } catch {
    return false;
  }
}
