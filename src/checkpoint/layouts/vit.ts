/**
 * Hugging Face ViT layouts: `ViTForImageClassification` (keys under `vit.`, `classifier`) and the headless
 * `ViTModel` (the same keys without the `vit.` prefix, no classifier, an optional `pooler.dense`).
 *
 * Key map (HF -> timm), block i:
 *   {p}embeddings.cls_token -> cls_token; {p}embeddings.position_embeddings -> pos_embed
 *   {p}embeddings.patch_embeddings.projection.{weight,bias} -> patch_embed.proj.*
 *   {p}encoder.layer.i.layernorm_before -> blocks.i.norm1; .attention.attention.{query,key,value} -> blocks.i.attn.qkv (fused, q|k|v rows)
 *   .attention.output.dense -> blocks.i.attn.proj; .layernorm_after -> blocks.i.norm2
 *   .intermediate.dense -> blocks.i.mlp.fc1; .output.dense -> blocks.i.mlp.fc2
 *   {p}layernorm -> norm; classifier -> head
 * Semantics kept: HF ViT LayerNorm eps (config layer_norm_eps, default 1e-12); the MLP width is intermediate_size
 * as given; ViTModel's pooler (dense + tanh on the class token) is not part of vitkit's model: it is dropped on load.
 */
import type { ViTConfig } from '../../models/config.js';
import { type HfLayout, type Rule, type HfConfig, hfAct, imgHW, mlpHidden, numPatches, linearRules, qkvRules, rename } from './hf.js';

/** embeddings + encoder + final layernorm under `p` ('vit.', 'deit.', '' ...) with ViT's layer names */
export function vitEncoderRules(c: ViTConfig, p: string, opts: { prefixTokens?: number } = {}): Rule[] {
  const D = c.embed_dim, H = mlpHidden(c), P = c.patch_size;
  const N = numPatches(c) + (opts.prefixTokens ?? 1);
  const rules: Rule[] = [
    rename(`${p}embeddings.cls_token`, 'cls_token', [1, 1, D]),
    rename(`${p}embeddings.position_embeddings`, 'pos_embed', [1, N, D]),
    ...linearRules(`${p}embeddings.patch_embeddings.projection`, 'patch_embed.proj', D, null),
  ];
  // the projection weight is (D, C, P, P), not (D, in)
  rules[2] = rename(`${p}embeddings.patch_embeddings.projection.weight`, 'patch_embed.proj.weight', [D, c.in_chans, P, P]);
  for (let i = 0; i < c.depth; i++) {
    const h = `${p}encoder.layer.${i}.`, t = `blocks.${i}.`;
    rules.push(
      ...linearRules(h + 'layernorm_before', t + 'norm1', D, null),
      ...qkvRules(h + 'attention.attention.', ['query', 'key', 'value'], '.', t + 'attn.qkv', D, c.qkv_bias),
      ...linearRules(h + 'attention.output.dense', t + 'attn.proj', D, D),
      ...linearRules(h + 'layernorm_after', t + 'norm2', D, null),
      ...linearRules(h + 'intermediate.dense', t + 'mlp.fc1', H, D),
      ...linearRules(h + 'output.dense', t + 'mlp.fc2', D, H),
    );
  }
  rules.push(...linearRules(`${p}layernorm`, 'norm', D, null));
  return rules;
}

/** HF ViTConfig fields shared by ViT and DeiT */
export function vitConfigFromHf(cfg: HfConfig): Record<string, unknown> {
  const hidden = cfg.int('hidden_size');
  return {
    img_size: cfg.size('image_size', 224), patch_size: cfg.int('patch_size', 16), in_chans: cfg.int('num_channels', 3),
    embed_dim: hidden, depth: cfg.int('num_hidden_layers', 12, 0), num_heads: cfg.int('num_attention_heads', 12),
    ...cfg.intermediate(hidden), qkv_bias: cfg.bool('qkv_bias', true),
    class_token: true, global_pool: 'token', fc_norm: null, pos_embed: 'learn',
    layer_norm_eps: cfg.num('layer_norm_eps', 1e-12), act: cfg.act('gelu'),
  };
}

export function vitHfConfig(c: ViTConfig, extra: Record<string, unknown>): Record<string, unknown> {
  const [h, w] = imgHW(c);
  return {
    hidden_size: c.embed_dim, num_hidden_layers: c.depth, num_attention_heads: c.num_heads, intermediate_size: mlpHidden(c),
    hidden_act: hfAct(c.act), hidden_dropout_prob: 0, attention_probs_dropout_prob: 0, initializer_range: 0.02,
    layer_norm_eps: c.layer_norm_eps, image_size: h === w ? h : [h, w], patch_size: c.patch_size, num_channels: c.in_chans,
    qkv_bias: c.qkv_bias, ...extra,
  };
}

export function id2label(n: number, labels?: readonly string[]): Record<string, unknown> {
  if (!n) return {};
  const names = Array.from({ length: n }, (_, i) => labels?.[i] ?? `LABEL_${i}`);
  return { id2label: Object.fromEntries(names.map((l, i) => [String(i), l])), label2id: Object.fromEntries(names.map((l, i) => [l, i])) };
}

export const ViTForImageClassification: HfLayout = {
  architecture: 'ViTForImageClassification', modelType: 'vit', hasClassifier: true,
  describe: 'transformers ViTForImageClassification (vit.* + classifier)',
  configFromHf(cfg) {
    return { ...vitConfigFromHf(cfg), num_classes: numLabels(cfg) };
  },
  hfConfigFrom(c, labels) {
    return vitHfConfig(c, { architectures: ['ViTForImageClassification'], model_type: 'vit', ...id2label(c.num_classes, labels) });
  },
  rules(c) {
    return [...vitEncoderRules(c, 'vit.'), ...(c.num_classes > 0 ? linearRules('classifier', 'head', c.num_classes, c.embed_dim) : []),
      ...poolerRules(c, 'vit.')];
  },
};

export const ViTModel: HfLayout = {
  architecture: 'ViTModel', modelType: 'vit', hasClassifier: false,
  describe: 'transformers ViTModel (headless: embeddings.*, encoder.*, layernorm; pooler dropped)',
  configFromHf(cfg) {
    return { ...vitConfigFromHf(cfg), num_classes: 0 };
  },
  hfConfigFrom(c) {
    return vitHfConfig(c, { architectures: ['ViTModel'], model_type: 'vit' });
  },
  rules(c) {
    return [...vitEncoderRules(c, ''), ...poolerRules(c, '')];
  },
};

/** ViTModel's pooler (dense + tanh on the class token): not used by vitkit's heads, dropped on load */
function poolerRules(c: ViTConfig, p: string): Rule[] {
  return [
    { kind: 'hf_only', hf: [`${p}pooler.dense.weight`, [c.embed_dim, c.embed_dim]] },
    { kind: 'hf_only', hf: [`${p}pooler.dense.bias`, [c.embed_dim]] },
  ];
}

/** num_labels as transformers derives it: the size of id2label, else num_labels, else 2 */
export function numLabels(cfg: HfConfig): number {
  const m = cfg.raw['id2label'];
  if (m && typeof m === 'object' && !Array.isArray(m)) return Object.keys(m).length;
  return cfg.int('num_labels', 2, 0);
}
