/**
 * The built-in families, registered on import, and `createModel`: config -> model.
 * 'vit' is timm's VisionTransformer with every feature of ViTConfig (DeiT's distillation token,
 * DINOv2's LayerScale and registers, CLIP's pre-norm, SigLIP's MAP head, SwiGLU).
 */
import type { Backend } from '../backend/backend.js';
import type { ParamTable } from '../nn/params.js';
import type { ViTConfig } from './config.js';
import { VisionTransformer, vitParamSpecs, vitMacs } from './vit.js';
import { initWeights } from './init.js';
import { type Model, type ModelFamily, registerFamily, getFamily } from './model.js';

export const VIT_FAMILY: ModelFamily = {
  name: 'vit',
  paramSpecs: vitParamSpecs,
  create: (config, params, backend) => new VisionTransformer(config, params, backend),
  init: (model, seed) => initWeights(model, seed),
  macs: vitMacs,
};
registerFamily(VIT_FAMILY);

export interface CreateOptions {
  /** registry name (default 'vit') */
  family?: string;
  /** weights to use (the family's layout); default a fresh table */
  params?: ParamTable;
  backend?: Backend;
  /** initialize with the family's default init from this seed (ignored when params are given) */
  seed?: number;
}

/** config -> model of a registered family */
export function createModel(config: ViTConfig, opts: CreateOptions = {}): Model {
  const f = getFamily(opts.family ?? 'vit');
  const m = f.create(config, opts.params, opts.backend);
  if (opts.seed !== undefined && !opts.params) f.init(m, opts.seed);
  return m;
}

export { registerFamily, getFamily, type Model, type ModelFamily };
