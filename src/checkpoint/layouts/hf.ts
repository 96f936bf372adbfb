/**
 * Hugging Face checkpoint layouts as declarative key maps between HF tensor names and timm's.
 *
 * A layout lists rules; each rule relates a group of HF tensors to a group of timm tensors and is
 * applied in either direction (`hfToTimm` when loading, `timmToHf` when converting a timm state
 * dict into that layout). Every HF tensor a rule reads is checked for its exact shape first, so a
 * wrong query, key, value, weight or bias is reported by name with the expected and received shape.
 *
 * Rule kinds:
 * - `concat`: the HF tensors, flattened and concatenated in order, equal the timm tensors flattened
 *   and concatenated (a rename is the one-to-one case; q/k/v -> qkv fuses three; SigLIP's
 *   in_proj -> attn_pool.q + attn_pool.kv splits one).
 * - `cls_pos_fold`: DINOv2 with registers: HF adds position row 0 to the class token and inserts the
 *   registers after the position embedding; timm (no_embed_class) has no class position, so
 *   timm cls_token = HF cls_token + HF pos[0] and timm pos_embed = HF pos[1:]. Back: pos[0] = 0.
 * - `timm_only_zero`: a timm tensor HF does not have and that must be zero (CLIP's visual_projection
 *   has no bias; timm's head does).
 * - `hf_only`: an HF tensor timm does not have, unused at inference (DINOv2's mask_token, ViTModel's
 *   pooler): dropped on load, written as zeros (`fill`) or left out on conversion.
 */
import { VitkitError, shapeStr } from '../../errors.js';
import type { ViTConfig } from '../../models/config.js';

export type Tensor32 = { shape: number[]; data: Float32Array };
export type StateDict = Map<string, Tensor32>;
export type Named = [name: string, shape: number[]];

export type Rule =
  | { kind: 'concat'; hf: Named[]; timm: Named[] }
  | { kind: 'cls_pos_fold'; hf: [cls: Named, pos: Named]; timm: [cls: Named, pos: Named] }
  | { kind: 'timm_only_zero'; timm: Named; why: string }
  | { kind: 'hf_only'; hf: Named; fill?: number };

export interface HfLayout {
  /** the `architectures[0]` class name transformers writes */
  architecture: string;
  /** config.json `model_type` */
  modelType: string;
  /** what the layout is, for messages and docs */
  describe: string;
  /** HF config.json -> vitkit config fields (resolveConfig validates them) */
  configFromHf(cfg: HfConfig): Record<string, unknown>;
  /** vitkit config -> HF config.json (used to convert timm weights into this layout) */
  hfConfigFrom(c: ViTConfig, labels?: readonly string[]): Record<string, unknown>;
  /** the key map for a config */
  rules(c: ViTConfig): Rule[];
  /** labels come from id2label when the layout has a classifier */
  hasClassifier: boolean;
  /** HF tensors of other parts of the checkpoint that are dropped on load (e.g. CLIPModel's text tower) */
  ignore?: RegExp;
}

/** Typed access to an HF config.json object with one-line errors naming the field. */
export class HfConfig {
  constructor(readonly raw: Record<string, unknown>, readonly file: string) {}
  num(k: string, dflt?: number): number {
    const v = this.raw[k] ?? dflt;
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new VitkitError(`${this.file}: expected a number for "${k}" but received ${v === undefined ? 'nothing' : JSON.stringify(v)}`);
    }
    return v;
  }
  int(k: string, dflt?: number, min = 1): number {
    const v = this.num(k, dflt);
    if (!Number.isInteger(v) || v < min) throw new VitkitError(`${this.file}: expected an integer >= ${min} for "${k}" but received ${v}`);
    return v;
  }
  bool(k: string, dflt: boolean): boolean {
    const v = this.raw[k];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'boolean') throw new VitkitError(`${this.file}: expected true or false for "${k}" but received ${JSON.stringify(v)}`);
    return v;
  }
  /** image_size / patch_size as HF writes them: a number or [H, W] */
  size(k: string, dflt: number): number | [number, number] {
    const v = this.raw[k] ?? dflt;
    if (typeof v === 'number' && Number.isInteger(v) && v > 0) return v;
    if (Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'number' && Number.isInteger(x) && x > 0)) {
      return v[0] === v[1] ? (v[0] as number) : [v[0] as number, v[1] as number];
    }
    throw new VitkitError(`${this.file}: expected a positive integer or [height, width] for "${k}" but received ${JSON.stringify(v)}`);
  }
  /** HF hidden_act -> vitkit act */
  act(dflt: string): ViTConfig['act'] {
    const act = this.raw['hidden_act'] ?? dflt;
    const map: Record<string, ViTConfig['act']> = {
      gelu: 'gelu', gelu_new: 'gelu_tanh', gelu_pytorch_tanh: 'gelu_tanh', gelu_fast: 'gelu_tanh',
      quick_gelu: 'quick_gelu', silu: 'silu', swish: 'silu',
    };
    if (typeof act !== 'string' || !map[act]) {
      throw new VitkitError(`${this.file}: hidden_act ${JSON.stringify(act)} is not supported (expected one of ${Object.keys(map).join(', ')})`);
    }
    return map[act]!;
  }
  /** HF's intermediate_size taken as given: the MLP width, not a ratio */
  intermediate(hidden: number): { mlp_ratio: number; mlp_hidden: number | null } {
    const inter = this.int('intermediate_size');
    const ratio = inter / hidden;
    // an explicit width only where floor(hidden * ratio) would miss it (e.g. 176 / 480)
    return { mlp_ratio: ratio, mlp_hidden: Math.floor(hidden * ratio) === inter ? null : inter };
  }
}

/** vitkit act -> HF hidden_act */
export function hfAct(act: ViTConfig['act']): string {
  return { gelu: 'gelu', gelu_tanh: 'gelu_pytorch_tanh', quick_gelu: 'quick_gelu', silu: 'silu' }[act];
}

/** img_size as (H, W) */
import { dims, imgHW } from '../../models/config.js';
export { imgHW };

/** number of patches of the config's native grid */
export function numPatches(c: ViTConfig): number {
  const [h, w] = imgHW(c);
  return Math.floor(h / c.patch_size) * Math.floor(w / c.patch_size);
}

/** MLP hidden width (fc1 rows) */
export function mlpHidden(c: ViTConfig): number {
  return dims(c).H;
}

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/** q/k/v (weight and bias, when present) of one attention -> timm's fused qkv */
export function qkvRules(hfPrefix: string, names: [string, string, string], suffix: string, timm: string, D: number, bias: boolean): Rule[] {
  const rules: Rule[] = [{ kind: 'concat', hf: names.map((n) => [`${hfPrefix}${n}${suffix}weight`, [D, D]] as Named), timm: [[`${timm}.weight`, [3 * D, D]]] }];
  if (bias) rules.push({ kind: 'concat', hf: names.map((n) => [`${hfPrefix}${n}${suffix}bias`, [D]] as Named), timm: [[`${timm}.bias`, [3 * D]]] });
  return rules;
}

/** one-to-one renames of Linear / LayerNorm weight + bias */
export function linearRules(hf: string, timm: string, out: number, inp: number | null, bias = true): Rule[] {
  const rules: Rule[] = [{ kind: 'concat', hf: [[`${hf}.weight`, inp === null ? [out] : [out, inp]]], timm: [[`${timm}.weight`, inp === null ? [out] : [out, inp]]] }];
  if (bias) rules.push({ kind: 'concat', hf: [[`${hf}.bias`, [out]]], timm: [[`${timm}.bias`, [out]]] });
  return rules;
}

export const rename = (hf: string, timm: string, hfShape: number[], timmShape: number[] = hfShape): Rule =>
  ({ kind: 'concat', hf: [[hf, hfShape]], timm: [[timm, timmShape]] });

function takeChecked(raw: StateDict, [name, shape]: Named, where: string, opts: { posEmbed?: boolean; timmName?: string; layout?: string; fused?: boolean }): Tensor32 {
  const t = raw.get(name);
  if (!t) {
    throw new VitkitError(opts.timmName && opts.layout
      ? `Missing tensor in ${where}: ${opts.timmName} (${name} in the ${opts.layout} layout)`
      : `Missing tensor in ${where}: ${name}`);
  }
  if (!sameShape(t.shape, shape)) {
    // a position embedding for another grid is resampled later, by timm's rule; its width must still match
    const resamplable = opts.posEmbed && t.shape.length === shape.length && t.shape[t.shape.length - 1] === shape[shape.length - 1];
    if (!resamplable) {
      // a renamed tensor is named as vitkit/timm calls it (the HF name in parentheses); a part of a fused one by its HF name
      const label = opts.timmName && opts.layout && !opts.fused
        ? `${opts.timmName} in ${where} (${name} in the ${opts.layout} layout)`
        : `${name} in ${where}`;
      throw new VitkitError(`Wrong shape for tensor ${label}: expected ${shapeStr(shape)} but received ${shapeStr(t.shape)}`);
    }
  }
  if (t.data.length !== numel(t.shape)) throw new VitkitError(`Tensor ${name} in ${where} has ${t.data.length} values for shape ${shapeStr(t.shape)}`);
  raw.delete(name);
  return t;
}

const isPos = (n: string) => /position_embedding|pos_embed/.test(n);

/** HF state dict -> timm state dict by the layout's rules; every HF tensor is accounted for. */
export function hfToTimm(layout: HfLayout, c: ViTConfig, hf: StateDict, where: string): StateDict {
  const raw: StateDict = new Map(hf);
  const out: StateDict = new Map();
  for (const r of layout.rules(c)) {
    if (r.kind === 'hf_only') {
      if (raw.has(r.hf[0])) takeChecked(raw, r.hf, where, {});
      continue;
    }
    if (r.kind === 'timm_only_zero') {
      out.set(r.timm[0], { shape: [...r.timm[1]], data: new Float32Array(numel(r.timm[1])) });
      continue;
    }
    if (r.kind === 'cls_pos_fold') {
      const cls = takeChecked(raw, r.hf[0], where, { timmName: r.timm[0][0], layout: layout.architecture });
      const pos = takeChecked(raw, r.hf[1], where, { posEmbed: true, timmName: r.timm[1][0], layout: layout.architecture });
      const D = cls.data.length;
      const tc = new Float32Array(D); // (1, 1, D)
      for (let i = 0; i < D; i++) tc[i] = cls.data[i]! + pos.data[i]!;
      out.set(r.timm[0][0], { shape: [...r.timm[0][1]], data: tc });
      out.set(r.timm[1][0], { shape: [1, pos.shape[1]! - 1, D], data: pos.data.slice(D) }); // (1, NP, D)
      continue;
    }
    const timmName = r.timm.map((x) => x[0]).join(' + ');
    const fused = r.hf.length > 1 || r.timm.length > 1;
    const parts = r.hf.map((n) => takeChecked(raw, n, where, { posEmbed: r.hf.length === 1 && isPos(n[0]), timmName, layout: layout.architecture, fused }));
    if (r.hf.length === 1 && r.timm.length === 1) {
      // a rename; a position embedding of another grid keeps its token count (resampled by the loader)
      const t = parts[0]!;
      const want = r.timm[0][1];
      const shape = sameShape(t.shape, r.hf[0][1]) ? [...want] : want.length === 3 && t.shape.length === 2 ? [1, ...t.shape] : [...t.shape];
      out.set(r.timm[0][0], { shape, data: t.data });
      continue;
    }
    const flat = new Float32Array(parts.reduce((s, p) => s + p.data.length, 0));
    let o = 0;
    for (const p of parts) { flat.set(p.data, o); o += p.data.length; }
    o = 0;
    for (const [name, shape] of r.timm) {
      const n = numel(shape);
      out.set(name, { shape: [...shape], data: flat.slice(o, o + n) });
      o += n;
    }
  }
  if (layout.ignore) for (const k of [...raw.keys()]) if (layout.ignore.test(k)) raw.delete(k);
  if (raw.size) {
    const extra = [...raw.keys()];
    throw new VitkitError(`Unexpected tensor${extra.length > 1 ? 's' : ''} in ${where} for ${layout.architecture}: ${extra.slice(0, 8).join(', ')}${extra.length > 8 ? `, ... (${extra.length} in all)` : ''}`);
  }
  return out;
}

/** timm state dict -> HF state dict by the same rules (the inverse of hfToTimm). */
export function timmToHf(layout: HfLayout, c: ViTConfig, timm: StateDict): StateDict {
  const raw: StateDict = new Map(timm);
  const out: StateDict = new Map();
  const where = 'the timm state dict';
  for (const r of layout.rules(c)) {
    if (r.kind === 'hf_only') {
      if (r.fill !== undefined) out.set(r.hf[0], { shape: [...r.hf[1]], data: new Float32Array(numel(r.hf[1])).fill(r.fill) });
      continue;
    }
    if (r.kind === 'timm_only_zero') {
      const t = takeChecked(raw, r.timm, where, {});
      if (t.data.some((v) => v !== 0)) throw new VitkitError(`Cannot write ${layout.architecture}: ${r.timm[0]} is not zero and ${r.why}`);
      continue;
    }
    if (r.kind === 'cls_pos_fold') {
      const cls = takeChecked(raw, r.timm[0], where, {});
      const pos = takeChecked(raw, r.timm[1], where, {});
      const D = cls.data.length;
      const hp = new Float32Array(pos.data.length + D); // (1, 1 + NP, D), row 0 zero
      hp.set(pos.data, D);
      out.set(r.hf[0][0], { shape: [...r.hf[0][1]], data: cls.data.slice() });
      out.set(r.hf[1][0], { shape: [...r.hf[1][1]], data: hp });
      continue;
    }
    const parts = r.timm.map((n) => takeChecked(raw, n, where, {}));
    const flat = new Float32Array(parts.reduce((s, p) => s + p.data.length, 0));
    let o = 0;
    for (const p of parts) { flat.set(p.data, o); o += p.data.length; }
    o = 0;
    for (const [name, shape] of r.hf) {
      const n = numel(shape);
      out.set(name, { shape: [...shape], data: flat.slice(o, o + n) });
      o += n;
    }
  }
  if (raw.size) throw new VitkitError(`Cannot write ${layout.architecture}: no place for ${[...raw.keys()].slice(0, 8).join(', ')}`);
  return out;
}

/** labels from id2label (a JSON object "0" -> name); a string or array id2label is rejected, not split */
export function hfLabels(cfg: HfConfig, numLabels: number): string[] | null {
  const id2label = cfg.raw['id2label'];
  if (id2label === undefined || id2label === null) return null;
  if (typeof id2label !== 'object' || Array.isArray(id2label)) {
    throw new VitkitError(`${cfg.file}: expected an object {"0": "name", ...} for "id2label" but received ${JSON.stringify(id2label).slice(0, 60)}`);
  }
  const m = id2label as Record<string, unknown>;
  return Array.from({ length: numLabels }, (_, i) => {
    const v = m[String(i)];
    if (v === undefined) return `class_${i}`;
    if (typeof v !== 'string') throw new VitkitError(`${cfg.file}: expected a string for id2label["${i}"] but received ${JSON.stringify(v)}`);
    return v;
  });
}
