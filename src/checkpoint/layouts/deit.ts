/**
 * Hugging Face DeiT with distillation: `DeiTForImageClassificationWithTeacher`.
 *
 * Key map (HF -> timm): ViT's encoder names under `deit.` (see ../vit/layout.ts), plus
 *   deit.embeddings.distillation_token -> dist_token (token order [cls, dist, patches], both with a position)
 *   cls_classifier -> head; distillation_classifier -> head_dist
 * Semantics kept: logits = (cls_logits + distillation_logits) / 2 (timm's eval output too); LayerNorm eps from the
 * config (HF default 1e-12, timm 1e-6).
 */
import { type HfLayout, linearRules, rename } from './hf.js';
import { vitEncoderRules, vitConfigFromHf, vitHfConfig, id2label, numLabels } from './vit.js';

export const DeiTForImageClassificationWithTeacher: HfLayout = {
  architecture: 'DeiTForImageClassificationWithTeacher', modelType: 'deit', hasClassifier: true,
  describe: 'transformers DeiTForImageClassificationWithTeacher (deit.* + cls_classifier + distillation_classifier)',
  configFromHf(cfg) {
    return { ...vitConfigFromHf(cfg), num_classes: numLabels(cfg), distilled: true };
  },
  hfConfigFrom(c, labels) {
    return vitHfConfig(c, { architectures: ['DeiTForImageClassificationWithTeacher'], model_type: 'deit', encoder_stride: 16, ...id2label(c.num_classes, labels) });
  },
  rules(c) {
    const D = c.embed_dim, K = c.num_classes;
    return [
      ...vitEncoderRules(c, 'deit.', { prefixTokens: 2 }),
      rename('deit.embeddings.distillation_token', 'dist_token', [1, 1, D]),
      ...(K > 0 ? [...linearRules('cls_classifier', 'head', K, D), ...linearRules('distillation_classifier', 'head_dist', K, D)] : []),
    ];
  },
};
