/**
 * The checkpoint layouts vitkit reads, by library. timm's hub layout needs no key map (timm names are vitkit's);
 * Hugging Face layouts are found by config.json `architectures[0]` (else `model_type`).
 */
import { VitkitError } from '../../errors.js';
import type { HfLayout } from './hf.js';
import { ViTForImageClassification, ViTModel } from './vit.js';
import { DeiTForImageClassificationWithTeacher } from './deit.js';
import { Dinov2Model, Dinov2WithRegistersModel } from './dinov2.js';
import { CLIPModel, CLIPVisionModel, CLIPVisionModelWithProjection } from './clip.js';
import { SiglipModel, SiglipVisionModel } from './siglip.js';

export const HF_LAYOUTS: Record<string, HfLayout> = Object.fromEntries([
  ViTForImageClassification, ViTModel, DeiTForImageClassificationWithTeacher, Dinov2Model, Dinov2WithRegistersModel,
  CLIPVisionModel, CLIPVisionModelWithProjection, CLIPModel, SiglipVisionModel, SiglipModel,
].map((l) => [l.architecture, l]));

/** model_type -> layout when config.json names no architectures (a bare ViTConfig is ViTForImageClassification) */
const BY_MODEL_TYPE: Record<string, HfLayout> = {
  vit: ViTForImageClassification, deit: DeiTForImageClassificationWithTeacher, dinov2: Dinov2Model,
  dinov2_with_registers: Dinov2WithRegistersModel, clip_vision_model: CLIPVisionModel, siglip_vision_model: SiglipVisionModel,
  clip: CLIPModel, siglip: SiglipModel,
};

/** Is this config.json a Hugging Face one (as opposed to timm's hub layout)? */
export function isHfConfig(cfg: Record<string, unknown>): boolean {
  return typeof cfg['model_type'] === 'string' || Array.isArray(cfg['architectures']) || cfg['architectures'] !== undefined;
}

/** The layout of an HF config.json; a non-ViT architecture (ResNetForImageClassification, ...) is an error. */
export function hfLayoutFor(cfg: Record<string, unknown>, file: string): HfLayout {
  const archs = cfg['architectures'];
  const known = Object.keys(HF_LAYOUTS).join(', ');
  if (archs !== undefined && archs !== null) {
    if (!Array.isArray(archs) || archs.length === 0 || typeof archs[0] !== 'string') {
      throw new VitkitError(`${file}: expected "architectures" to be a list of class names (e.g. ["ViTForImageClassification"]) but received ${JSON.stringify(archs)}`);
    }
    const layout = HF_LAYOUTS[archs[0]];
    if (!layout) throw new VitkitError(`${file}: architecture ${archs[0]} is not supported; vitkit reads ${known}`);
    return layout;
  }
  const mt = cfg['model_type'];
  const layout = typeof mt === 'string' ? BY_MODEL_TYPE[mt] : undefined;
  if (!layout) throw new VitkitError(`${file}: model_type ${JSON.stringify(mt)} is not supported; vitkit reads ${known}`);
  return layout;
}

export type { HfLayout } from './hf.js';
export { hfToTimm, timmToHf, HfConfig, hfLabels } from './hf.js';
