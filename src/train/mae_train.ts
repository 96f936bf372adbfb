/**
 * MAE pre-training's recipe (facebookresearch/mae main_pretrain.py): AdamW with betas (0.9, 0.95),
 * weight decay 0.05 on every tensor except those of ndim 1 and biases (timm's add_weight_decay with
 * an empty skip list: cls_token and mask_token decay), lr = base_lr x batch / 256 (base_lr 1.5e-4),
 * a cosine schedule with linear warmup.
 */
import type { AdamWOptions } from './optim.js';

export const MAE_BASE_LR = 1.5e-4;
export const MAE_WEIGHT_DECAY = 0.05;
export const MAE_BETAS: [number, number] = [0.9, 0.95];

/** MAE's absolute lr from its base lr: blr x effective batch / 256 */
export function maeLr(batch: number, baseLr = MAE_BASE_LR): number {
  return (baseLr * batch) / 256;
}

/** AdamW options of MAE pre-training at lr */
export function maeAdamWOptions(lr: number, weightDecay = MAE_WEIGHT_DECAY): AdamWOptions {
  return { lr, betas: MAE_BETAS, eps: 1e-8, weightDecay, noWeightDecay: [] };
}
