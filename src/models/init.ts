/**
 * Weight initialization (timm's VisionTransformer init_weights, seeded and reproducible):
 * Linear trunc_normal(.02) with zero bias, LayerNorm (1, 0), pos_embed / dist_token
 * trunc_normal(.02), cls_token / reg_token normal(1e-6), patch conv lecun-normal-ish,
 * LayerScale gammas = init_values, the MAP latent trunc_normal(D^-0.5).
 */
import type { ParamTable } from '../nn/params.js';
import type { ViTConfig } from './config.js';
import { mulberry32 } from '../data/rng.js';

export function truncNormal(rand: () => number, std: number): number {
  // Box-Muller, redrawn outside +-2 std (timm's trunc_normal_ with a=-2std, b=2std)
  for (;;) {
    const u = 1 - rand(), v = rand();
    const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    if (Math.abs(z) <= 2) return z * std;
  }
}

/** What initialization reads from a model. */
export interface Initializable {
  readonly config: ViTConfig;
  readonly params: ParamTable;
}

/** timm's default init, in parameter order from one seeded stream. */
export function initWeights(model: Initializable, seed = 0): void {
  const rand = mulberry32(seed);
  for (const spec of model.params.specs) {
    const v = model.params.get(spec.name);
    const n = spec.name;
    if (n.endsWith('.bias')) v.fill(0);
    else if (/norm\d?\.weight$|norm\.weight$|norm_pre\.weight$/.test(n)) v.fill(1);
    else if (n.endsWith('.gamma')) v.fill(model.config.init_values ?? 1);
    else if (n === 'cls_token' || n === 'reg_token') for (let i = 0; i < v.length; i++) v[i] = truncNormal(rand, 1e-6);
    else if (n === 'attn_pool.latent') {
      const std = 1 / Math.sqrt(spec.shape[spec.shape.length - 1]!);
      for (let i = 0; i < v.length; i++) v[i] = truncNormal(rand, std);
    } else if (n === 'patch_embed.proj.weight') {
      const fanIn = spec.shape.slice(1).reduce((a, b) => a * b, 1);
      for (let i = 0; i < v.length; i++) v[i] = truncNormal(rand, Math.sqrt(1 / fanIn));
    } else for (let i = 0; i < v.length; i++) v[i] = truncNormal(rand, 0.02);
  }
}

/** A fresh classifier (fine-tuning with another class count): head (and DeiT's head_dist) trunc_normal(.02), zero bias. */
export function initHead(model: Initializable, seed = 1): void {
  const rand = mulberry32(seed);
  for (const h of ['head', 'head_dist']) {
    if (!model.params.has(`${h}.weight`)) continue;
    const w = model.params.get(`${h}.weight`);
    for (let i = 0; i < w.length; i++) w[i] = truncNormal(rand, 0.02);
    model.params.get(`${h}.bias`).fill(0);
  }
}
