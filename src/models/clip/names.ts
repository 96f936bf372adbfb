/**
 * CLIP's parameter names, written once and used in both directions:
 * - the engine's block/ViT names (timm's) <-> OpenAI/open_clip names (the canonical names of a
 *   ClipModel's table: `visual.*`, `transformer.resblocks.*`, `token_embedding.weight`, ...);
 * - OpenAI names <-> Hugging Face `CLIPModel` names (`vision_model.*`, `text_model.*`,
 *   `visual_projection`, `text_projection`), with the layout change each pair needs: HF splits
 *   `in_proj_weight` into q/k/v projections and stores both projections as nn.Linear weights
 *   (E, W) where OpenAI stores (W, E).
 */

/** A transformer block's tensors: timm/engine suffix -> OpenAI suffix */
export const BLOCK_OC: ReadonlyArray<readonly [string, string]> = [
  ['norm1.weight', 'ln_1.weight'], ['norm1.bias', 'ln_1.bias'],
  ['attn.qkv.weight', 'attn.in_proj_weight'], ['attn.qkv.bias', 'attn.in_proj_bias'],
  ['attn.proj.weight', 'attn.out_proj.weight'], ['attn.proj.bias', 'attn.out_proj.bias'],
  ['norm2.weight', 'ln_2.weight'], ['norm2.bias', 'ln_2.bias'],
  ['mlp.fc1.weight', 'mlp.c_fc.weight'], ['mlp.fc1.bias', 'mlp.c_fc.bias'],
  ['mlp.fc2.weight', 'mlp.c_proj.weight'], ['mlp.fc2.bias', 'mlp.c_proj.bias'],
];

/** engine name of the image tower's ViT (timm's) -> OpenAI name */
export function visionToOpenAi(name: string, trunk = false): string {
  if (trunk) return 'visual.trunk.' + name;
  const fixed: Record<string, string> = {
    cls_token: 'visual.class_embedding', pos_embed: 'visual.positional_embedding', 'patch_embed.proj.weight': 'visual.conv1.weight',
    'norm_pre.weight': 'visual.ln_pre.weight', 'norm_pre.bias': 'visual.ln_pre.bias', 'norm.weight': 'visual.ln_post.weight', 'norm.bias': 'visual.ln_post.bias',
  };
  if (fixed[name]) return fixed[name];
  return blockToOpenAi(name, 'visual.transformer.resblocks.');
}

/** engine name of the text tower (blocks.i.* and CLIP's own names) -> OpenAI name */
export function textToOpenAi(name: string): string {
  return name.startsWith('blocks.') ? blockToOpenAi(name, 'transformer.resblocks.') : name;
}

function blockToOpenAi(name: string, prefix: string): string {
  const m = /^blocks\.(\d+)\.(.+)$/.exec(name);
  if (!m) throw new Error(`not a block tensor: ${name}`);
  const e = BLOCK_OC.find(([t]) => t === m[2]);
  if (!e) throw new Error(`no OpenAI name for block tensor ${name}`);
  return `${prefix}${m[1]}.${e[1]}`;
}

/** How one OpenAI tensor is stored in the HF layout. */
export interface HfEntry {
  /** OpenAI name */
  oc: string;
  /** HF name(s): three for a split in_proj (q, k, v) */
  hf: string[];
  /** 'same' values; 'transpose' a 2-D (W, E) <-> (E, W); 'split3' rows [q; k; v] <-> three tensors */
  kind: 'same' | 'transpose' | 'split3';
}

/** The documented OpenAI <-> HF key map of a CLIP with the given depths. */
export function hfKeyMap(visionLayers: number, textLayers: number): HfEntry[] {
  const out: HfEntry[] = [];
  const same = (oc: string, hf: string) => out.push({ oc, hf: [hf], kind: 'same' });
  const blocks = (ocPre: string, hfPre: string, n: number) => {
    for (let i = 0; i < n; i++) {
      const o = `${ocPre}${i}.`, h = `${hfPre}${i}.`;
      same(o + 'ln_1.weight', h + 'layer_norm1.weight'); same(o + 'ln_1.bias', h + 'layer_norm1.bias');
      out.push({ oc: o + 'attn.in_proj_weight', hf: ['q', 'k', 'v'].map((p) => `${h}self_attn.${p}_proj.weight`), kind: 'split3' });
      out.push({ oc: o + 'attn.in_proj_bias', hf: ['q', 'k', 'v'].map((p) => `${h}self_attn.${p}_proj.bias`), kind: 'split3' });
      same(o + 'attn.out_proj.weight', h + 'self_attn.out_proj.weight'); same(o + 'attn.out_proj.bias', h + 'self_attn.out_proj.bias');
      same(o + 'ln_2.weight', h + 'layer_norm2.weight'); same(o + 'ln_2.bias', h + 'layer_norm2.bias');
      same(o + 'mlp.c_fc.weight', h + 'mlp.fc1.weight'); same(o + 'mlp.c_fc.bias', h + 'mlp.fc1.bias');
      same(o + 'mlp.c_proj.weight', h + 'mlp.fc2.weight'); same(o + 'mlp.c_proj.bias', h + 'mlp.fc2.bias');
    }
  };
  same('visual.class_embedding', 'vision_model.embeddings.class_embedding');
  same('visual.positional_embedding', 'vision_model.embeddings.position_embedding.weight');
  same('visual.conv1.weight', 'vision_model.embeddings.patch_embedding.weight');
  same('visual.ln_pre.weight', 'vision_model.pre_layrnorm.weight'); same('visual.ln_pre.bias', 'vision_model.pre_layrnorm.bias');
  blocks('visual.transformer.resblocks.', 'vision_model.encoder.layers.', visionLayers);
  same('visual.ln_post.weight', 'vision_model.post_layernorm.weight'); same('visual.ln_post.bias', 'vision_model.post_layernorm.bias');
  out.push({ oc: 'visual.proj', hf: ['visual_projection.weight'], kind: 'transpose' });
  same('token_embedding.weight', 'text_model.embeddings.token_embedding.weight');
  same('positional_embedding', 'text_model.embeddings.position_embedding.weight');
  blocks('transformer.resblocks.', 'text_model.encoder.layers.', textLayers);
  same('ln_final.weight', 'text_model.final_layer_norm.weight'); same('ln_final.bias', 'text_model.final_layer_norm.bias');
  out.push({ oc: 'text_projection', hf: ['text_projection.weight'], kind: 'transpose' });
  same('logit_scale', 'logit_scale');
  return out;
}

/** HF buffers that may be saved beside the weights and carry nothing to load */
export const HF_IGNORED = /^(vision_model|text_model)\.embeddings\.position_ids$/;

export interface RawTensor {
  shape: number[];
  data: Float32Array;
}

/** OpenAI tensors -> HF tensors by the key map */
export function openAiToHf(oc: ReadonlyMap<string, RawTensor>, map: readonly HfEntry[]): Map<string, RawTensor> {
  const out = new Map<string, RawTensor>();
  for (const e of map) {
    const t = oc.get(e.oc);
    if (!t) throw new Error(`missing ${e.oc}`);
    if (e.kind === 'same') out.set(e.hf[0]!, { shape: [...t.shape], data: t.data.slice() });
    else if (e.kind === 'transpose') out.set(e.hf[0]!, transpose2d(t));
    else {
      const rows = t.shape[0]! / 3, per = t.data.length / 3;
      e.hf.forEach((n, i) => out.set(n, { shape: [rows, ...t.shape.slice(1)], data: t.data.slice(i * per, (i + 1) * per) }));
    }
  }
  return out;
}

/** HF tensors -> OpenAI tensors by the same key map (missing HF tensors are left out; the loader reports them) */
export function hfToOpenAi(hf: ReadonlyMap<string, RawTensor>, map: readonly HfEntry[]): { tensors: Map<string, RawTensor>; missing: string[]; badShape: string[] } {
  const out = new Map<string, RawTensor>();
  const missing: string[] = [], badShape: string[] = [];
  for (const e of map) {
    const parts = e.hf.map((n) => hf.get(n));
    const absent = e.hf.filter((_, i) => !parts[i]);
    if (absent.length) { missing.push(...absent); continue; }
    if (e.kind === 'same') out.set(e.oc, parts[0]!);
    else if (e.kind === 'transpose') {
      if (parts[0]!.shape.length !== 2) { badShape.push(`${e.hf[0]} ${JSON.stringify(parts[0]!.shape)} (expected 2-D)`); continue; }
      out.set(e.oc, transpose2d(parts[0]!));
    } else {
      const s0 = parts[0]!.shape;
      if (!parts.every((p) => JSON.stringify(p!.shape) === JSON.stringify(s0))) { badShape.push(`${e.hf.join('/')} (q, k, v shapes differ)`); continue; }
      const per = parts[0]!.data.length;
      const data = new Float32Array(3 * per);
      parts.forEach((p, i) => data.set(p!.data, i * per));
      out.set(e.oc, { shape: [3 * s0[0]!, ...s0.slice(1)], data });
    }
  }
  return { tensors: out, missing, badShape };
}

function transpose2d(t: RawTensor): RawTensor {
  const [R, C] = t.shape as [number, number];
  const data = new Float32Array(R * C); // (C, R)
  for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) data[c * R + r] = t.data[r * C + c]!;
  return { shape: [C, R], data };
}
