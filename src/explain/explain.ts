/**
 * Attention maps for image files: attention rollout over all blocks (or its gradient-weighted
 * variant for one class) and the last block's per-head attention, as maps on the patch grid, with
 * overlay images on the picture as the user gave it.
 *
 * With a class token the maps are the class token's row (what the classifier reads); without one
 * (global average pooling) the map is the mean of the rows over all tokens.
 */
import { Tensor } from '../tensor.js';
import { VitkitError } from '../errors.js';
import { loadModel, type LoadedModel } from '../checkpoint/checkpoint.js';
import { loadImage, type RawImage } from '../io/image.js';
import { preprocessImage } from '../io/preprocess.js';
import { dims, imgHW } from '../models/config.js';
import { argmax, softmax, topK } from '../nn/functional.js';
import { attentionRollout, gradientRollout, headMaps, patchMap, type HeadFusion } from './rollout.js';
import { attentionGradients } from './gradients.js';
import { runnerFor, type DeviceName, type Runner } from '../models/runner.js';
import { cropBox, type Box } from './overlay.js';

export type ExplainMethod = 'rollout' | 'grad-rollout';
export const EXPLAIN_METHODS: readonly ExplainMethod[] = ['rollout', 'grad-rollout'];

export interface ExplainOptions {
  method?: ExplainMethod;
  headFusion?: HeadFusion;
  discardRatio?: number;
  /** grad-rollout: class index or label (default: the predicted class) */
  classTarget?: string | number;
  /** where the forward and backward run (default cpu) */
  device?: DeviceName;
  /** a runner of this model to reuse across images (explainImages makes one) */
  runner?: Runner;
}

export interface Explanation {
  image: string;
  /** the image as the user gave it (RGB, EXIF orientation applied) */
  original: RawImage;
  /** where the model's input lies in the original image */
  box: Box;
  grid: [number, number];
  /** 'cls': class-token row; 'mean': mean over all token rows (no class token) */
  token: 'cls' | 'mean';
  method: ExplainMethod;
  /** rollout map (GH*GW, row-major) */
  rollout: Float32Array;
  /** last block's attention per head (NH maps of GH*GW) */
  heads: Float32Array[];
  /** predicted top class */
  predicted: { index: number; label: string; prob: number };
  /** grad-rollout: the class explained */
  target?: { index: number; label: string };
}

export const NO_CLASS_TOKEN_NOTE = 'the model has no class token (global average pooling): the maps are the mean of the rows over all tokens';

/** Resolve a class given as an index or a label. */
export function resolveClass(target: string | number, labels: readonly string[]): number {
  const K = labels.length;
  if (typeof target === 'number' || /^\d+$/.test(String(target).trim())) {
    const k = Number(target);
    if (!Number.isInteger(k) || k < 0 || k >= K) throw new VitkitError(`Expected a class index in [0, ${K - 1}] or a label for --class but received ${JSON.stringify(String(target))}`);
    return k;
  }
  const t = String(target).trim().toLowerCase();
  const hits = labels.map((l, i) => [l.toLowerCase(), i] as const).filter(([l]) => l === t);
  if (hits.length === 0) {
    const partial = labels.map((l, i) => [l.toLowerCase(), i] as const).filter(([l]) => l.split(/,\s*/).includes(t));
    if (partial.length === 1) return partial[0]![1];
    throw new VitkitError(`Expected a class index in [0, ${K - 1}] or one of the model's labels for --class but received ${JSON.stringify(String(target))}`);
  }
  return hits[0]![1];
}

/** Explain one image with an already loaded model. */
export async function explainOne(loaded: LoadedModel, file: string, opts: ExplainOptions = {}): Promise<Explanation> {
  const { model, preprocess, labels } = loaded;
  const c = model.config, d = dims(c);
  const method = opts.method ?? 'rollout';
  if (!EXPLAIN_METHODS.includes(method)) throw new VitkitError(`Expected --method rollout or grad-rollout but received ${JSON.stringify(method)}`);
  if (opts.classTarget !== undefined && method !== 'grad-rollout') {
    throw new VitkitError('--class selects the class of gradient-weighted rollout; pass --method grad-rollout with it');
  }
  if (c.depth === 0) throw new VitkitError('The model has no transformer blocks (depth 0): there is no attention to explain');
  const original = await loadImage(file, 3);
  const pixels = await preprocessImage(file, preprocess);
  const x = new Tensor([1, c.in_chans, ...imgHW(c)], pixels);
  const rolloutOpts = { headFusion: opts.headFusion ?? 'mean', discardRatio: opts.discardRatio ?? 0, numPrefix: d.numPrefix, classToken: d.cls };
  let attentions: Tensor[];
  let logits: Tensor | null = null;
  let target: Explanation['target'];
  let R: Tensor;
  if (method === 'grad-rollout') {
    if (c.num_classes === 0) throw new VitkitError('grad-rollout needs a classifier head, but the model has num_classes 0');
    const runner = opts.runner ?? await runnerFor(model, opts.device ?? 'cpu');
    const pre = await runner.forward(x);
    const k = opts.classTarget !== undefined ? resolveClass(opts.classTarget, labels) : topK(pre.data, 1)[0]!;
    const g = await attentionGradients(runner.deviceModel, x, k);
    if (!opts.runner) runner.release();
    attentions = g.attentions;
    logits = g.logits;
    target = { index: k, label: labels[k] ?? `class_${k}` };
    R = gradientRollout(attentions, g.grads, rolloutOpts);
  } else {
    const runner = opts.runner ?? await runnerFor(model, opts.device ?? 'cpu');
    const r = await runner.forwardAll(x, { attentions: true });
    if (!opts.runner) runner.release();
    attentions = r.features.attentions!;
    if (c.num_classes > 0) logits = r.heads.logits;
    R = attentionRollout(attentions, rolloutOpts);
  }
  let predicted = { index: -1, label: '', prob: 0 };
  if (logits) {
    const probs = softmax(logits.data, 1, c.num_classes);
    const top = topK(probs, 1)[0]!;
    predicted = { index: top, label: labels[top] ?? `class_${top}`, prob: probs[top]! };
  }
  const out: Explanation = {
    image: file, original, box: cropBox(preprocess, original.width, original.height), grid: [d.gridH, d.gridW],
    token: d.cls ? 'cls' : 'mean', method,
    rollout: patchMap(R.data, 0, d.N, d.numPrefix, d.cls),
    heads: headMaps(attentions[attentions.length - 1]!, 0, d.numPrefix, d.cls),
    predicted,
  };
  if (target) out.target = target;
  return out;
}

/** Explain image files with a checkpoint directory or preset. */
export async function explainImages(modelSource: string, files: string[], opts: ExplainOptions = {}): Promise<Explanation[]> {
  const loaded = loadModel(modelSource);
  const runner = opts.runner ?? await runnerFor(loaded.model, opts.device ?? 'cpu');
  const out: Explanation[] = [];
  try {
    for (const f of files) out.push(await explainOne(loaded, f, { ...opts, runner }));
  } finally {
    if (!opts.runner) runner.release();
  }
  return out;
}

/** (GH*GW) row-major -> nested rows, for JSON */
export function toRows(map: ArrayLike<number>, GH: number, GW: number): number[][] {
  return Array.from({ length: GH }, (_, r) => Array.from({ length: GW }, (_, c) => map[r * GW + c]!));
}

/** [row, col] of the largest value */
export function hottest(map: ArrayLike<number>, GW: number): [number, number] {
  const best = argmax(map);
  return [Math.floor(best / GW), best % GW];
}
