/**
 * What in an image matches a text prompt: gradient-weighted attention rollout of a CLIP image
 * tower toward the prompt's embedding (Chefer et al. 2021, "Generic Attention-model
 * Explainability", which explains CLIP with the image–text similarity as the target).
 *
 * The target is the model's own logit for the pair,
 *   score = exp(logit_scale) * cos(image_embeds, t),   t = normalize(text_embeds)
 * (Chefer et al.'s CLIP notebook backpropagates `logits_per_image`), with t a constant: its
 * gradient w.r.t. the image embedding e (E) is
 *   dscore/de = exp(logit_scale) * (t - ê (ê . t)) / |e|,   ê = e / |e|,
 * which flows back through visual.proj, ln_post and every block of the image tower; at each block
 * dscore/dA = dO V^T (src/explain/gradients.ts) and the blocks are fused as for a class target:
 * mean over heads of max(0, dscore/dA ⊙ A), plus the identity, rows renormalised, multiplied
 * through. The map is the class token's row over the patches.
 *
 * A prompt with templates ("a photo of a {}.") is CLIP's prompt ensemble, as zero-shot
 * classification builds it: each filled template embedded and normalised, the mean renormalised.
 */
import { Tensor } from '../tensor.js';
import { VitkitError } from '../errors.js';
import { loadImage, type RawImage } from '../io/image.js';
import { preprocessImage } from '../io/preprocess.js';
import { dims } from '../models/config.js';
import type { ClipModel } from '../models/clip/model.js';
import { normalizeRows } from '../models/clip/model.js';
import { loadClip, type LoadedClip } from '../clip/load.js';
import { encodeText } from '../clip/zeroshot.js';
import { gradientRollout, headMaps, patchMap } from './rollout.js';
import { attentionGradients } from './gradients.js';
import type { DeviceViT } from '../models/device.js';
import { cropBox, type Box } from './overlay.js';

/** One prompt as a target: its text, the texts embedded for it, and the unit embedding (E). */
export interface ClipTextTarget {
  text: string;
  /** the texts embedded (the templates filled in, or the text itself) */
  prompts: string[];
  /** normalize(mean of the prompts' normalised embeddings) (E) */
  embedding: Float32Array;
}

/** Each text as a target; with templates, the prompt ensemble of the filled templates ('{}' is the text). */
export function textTargets(clip: Pick<LoadedClip, 'model' | 'tokenizer'>, texts: readonly string[], templates: readonly string[] = []): ClipTextTarget[] {
  if (texts.length === 0) throw new VitkitError('Expected at least one text prompt (--text) but received none');
  for (const t of templates) if (!t.includes('{}')) throw new VitkitError(`Expected --template with {} where the text goes but received ${JSON.stringify(t)}`);
  const E = clip.model.config.embed_dim;
  return texts.map((text) => {
    const prompts = templates.length ? templates.map((t) => t.split('{}').join(text)) : [text];
    const emb = normalizeRows(encodeText(clip, prompts)); // (P, E)
    const mean = new Float64Array(E);
    for (let p = 0; p < prompts.length; p++) for (let e = 0; e < E; e++) mean[e] = mean[e]! + emb.data[p * E + e]! / prompts.length;
    let n = 0;
    for (let e = 0; e < E; e++) n += mean[e]! * mean[e]!;
    n = Math.max(Math.sqrt(n), 1e-12);
    const embedding = new Float32Array(E); // (E)
    for (let e = 0; e < E; e++) embedding[e] = mean[e]! / n;
    return { text, prompts, embedding };
  });
}

/**
 * score = scale * cos(image, target) of each image embedding (B, E) with one unit target (E),
 * and dscore/dimage (B, E) = scale * (t - ê (ê . t)) / |e| (float64 inside; F.normalize's eps 1e-12).
 */
export function similarityScoreGrad(image: Float32Array, B: number, E: number, target: Float32Array, scale: number): { cosine: Float64Array; score: Float64Array; grad: Float32Array } {
  if (image.length !== B * E) throw new VitkitError(`Expected image embeddings of (${B}, ${E}) but received ${image.length} values`);
  if (target.length !== E) throw new VitkitError(`Expected a text embedding of ${E} values (the model's embed_dim) but received ${target.length}`);
  const cosine = new Float64Array(B), score = new Float64Array(B);
  const grad = new Float32Array(B * E); // (B, E)
  for (let b = 0; b < B; b++) {
    let ss = 0;
    for (let e = 0; e < E; e++) ss += image[b * E + e]! * image[b * E + e]!;
    const n = Math.max(Math.sqrt(ss), 1e-12);
    let c = 0;
    for (let e = 0; e < E; e++) c += (image[b * E + e]! / n) * target[e]!;
    cosine[b] = c;
    score[b] = scale * c;
    for (let e = 0; e < E; e++) grad[b * E + e] = (scale * (target[e]! - (image[b * E + e]! / n) * c)) / n;
  }
  return { cosine, score, grad };
}

export interface ClipAttentionGradients {
  /** (B, E) before normalisation */
  imageEmbeds: Tensor;
  /** per image: cos(image, target) and the logit exp(logit_scale) * cos */
  cosine: Float64Array;
  score: Float64Array;
  /** per block of the image tower (B, NH, N, N) */
  attentions: Tensor[];
  /** per block dS/dA (B, NH, N, N), S = the sum over the batch of the scores */
  grads: Tensor[];
}

/**
 * Attention gradients of the image tower for pixel_values x (B, 3, H, W) toward one unit text
 * embedding (E), on the device `tower` runs on (default: the cpu device over the host model).
 */
export async function clipAttentionGradients(model: ClipModel, x: Tensor, target: Float32Array, tower?: DeviceViT): Promise<ClipAttentionGradients> {
  const c = model.config, E = c.embed_dim, Wv = c.vision.width, be = model.backend;
  const vit = model.visual;
  if (vit.config.depth === 0) throw new VitkitError('The CLIP image tower has no transformer blocks (depth 0): there is no attention to explain');
  if (vit.config.num_classes !== 0) throw new VitkitError(`Expected a CLIP image tower without a classifier (num_classes 0) but it has ${vit.config.num_classes}`);
  const proj = model.params.get('visual.proj'); // (Wv, E)
  let s: ReturnType<typeof similarityScoreGrad> | null = null;
  let img: Tensor | null = null;
  const g = await attentionGradients(tower ?? vit, x, (pooled) => {
    // image_embeds = pooled (B, Wv) @ proj; back through visual.proj: dpooled = dscore/de @ proj^T (B, Wv)
    const B = pooled.shape[0]!;
    const e = new Float32Array(B * E); // (B, E)
    be.gemm(false, false, B, E, Wv, 1, pooled.data, Wv, proj, E, 0, e, E);
    img = new Tensor([B, E], e);
    s = similarityScoreGrad(e, B, E, target, Math.exp(model.logitScale));
    const dpooled = new Float32Array(B * Wv); // (B, Wv)
    be.gemm(false, true, B, Wv, E, 1, s.grad, E, proj, E, 0, dpooled, Wv);
    return dpooled;
  });
  const sg = s as ReturnType<typeof similarityScoreGrad> | null;
  return { imageEmbeds: img!, cosine: sg!.cosine, score: sg!.score, attentions: g.attentions, grads: g.grads };
}

export interface ClipExplanation {
  image: string;
  /** the image as the user gave it (RGB, EXIF orientation applied) */
  original: RawImage;
  /** where the model's input lies in the original image */
  box: Box;
  grid: [number, number];
  token: 'cls';
  method: 'grad-rollout';
  text: string;
  prompts: string[];
  /** cos(image, text) and the model's logit exp(logit_scale) * cos, the score explained */
  similarity: number;
  logit: number;
  /** gradient-weighted rollout toward the text (GH*GW, row-major) */
  rollout: Float32Array;
  /** the image tower's last block attention per head (NH maps of GH*GW) */
  heads: Float32Array[];
}

export interface ClipExplainOptions {
  /** prompt templates with {} (the prompt ensemble); default: the texts as given */
  templates?: readonly string[];
  discardRatio?: number;
  /** the image tower on a device (a runner's deviceModel); default: the cpu device */
  tower?: DeviceViT;
}

/** One map per target for one image file. */
export async function explainClipOne(clip: LoadedClip, file: string, targets: readonly ClipTextTarget[], opts: ClipExplainOptions = {}): Promise<ClipExplanation[]> {
  const vc = clip.model.visual.config, d = dims(vc);
  if (!d.cls) throw new VitkitError('Expected a CLIP image tower with a class token (its pooled output) to explain');
  const original = await loadImage(file, 3);
  const { height: H, width: W } = clip.preprocess;
  const x = new Tensor([1, 3, H, W], await preprocessImage(file, clip.preprocess, file));
  const box = cropBox(clip.preprocess, original.width, original.height);
  const out: ClipExplanation[] = [];
  for (const t of targets) {
    const g = await clipAttentionGradients(clip.model, x, t.embedding, opts.tower);
    const R = gradientRollout(g.attentions, g.grads, { discardRatio: opts.discardRatio ?? 0, numPrefix: d.numPrefix, classToken: true });
    out.push({
      image: file, original, box, grid: [d.gridH, d.gridW], token: 'cls', method: 'grad-rollout',
      text: t.text, prompts: t.prompts, similarity: g.cosine[0]!, logit: g.score[0]!,
      rollout: patchMap(R.data, 0, d.N, d.numPrefix, true),
      heads: headMaps(g.attentions[g.attentions.length - 1]!, 0, d.numPrefix, true),
    });
  }
  return out;
}

/** Explain image files toward text prompts with a CLIP checkpoint directory: [image][prompt]. */
export async function explainClipImages(dir: string, files: readonly string[], texts: readonly string[], opts: ClipExplainOptions = {}): Promise<ClipExplanation[][]> {
  const clip = loadClip(dir);
  const targets = textTargets(clip, texts, opts.templates ?? []);
  const out: ClipExplanation[][] = [];
  for (const f of files) out.push(await explainClipOne(clip, f, targets, opts));
  return out;
}
