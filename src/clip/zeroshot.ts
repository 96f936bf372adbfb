/**
 * What users do with a CLIP: embed images and texts, and classify images against label names
 * with no training (CLIP's zero-shot classifier).
 *
 * zeroShotClassifier follows CLIP's notebook (and open_clip's build_zero_shot_classifier): for
 * each label, every template is filled in ("a photo of a {}."), the texts are embedded and
 * L2-normalised, averaged, and the mean renormalised — the prompt ensemble. Probabilities are the
 * softmax over labels of exp(logit_scale) * normalize(image) . class_weight, the model's own
 * logits_per_image (for a single template exactly what `model.forward` gives).
 */
import { VitkitError } from '../errors.js';
import { Tensor } from '../tensor.js';
import { preprocessImage } from '../io/preprocess.js';
import type { LoadedClip } from './load.js';
import { normalizeRows, type ClipModel } from '../models/clip/model.js';
import { runnerFor, type Runner } from '../models/runner.js';
import { announceDevice, hostDevice } from '../backend/devices.js';

export const DEFAULT_TEMPLATES: readonly string[] = ['a photo of a {}.'];

/** images (paths or encoded bytes) -> image_embeds (B, E) before normalisation */
export async function encodeImage(clip: Pick<LoadedClip, 'model' | 'preprocess'>, images: ReadonlyArray<string | Uint8Array>): Promise<Tensor> {
  if (images.length === 0) throw new VitkitError('encodeImage needs at least one image');
  const { height: H, width: W } = clip.preprocess;
  const per = 3 * H * W;
  const x = new Float32Array(images.length * per); // (B, 3, H, W)
  for (let i = 0; i < images.length; i++) x.set(await preprocessImage(images[i]!, clip.preprocess, typeof images[i] === 'string' ? (images[i] as string) : `image ${i}`), i * per);
  const px = new Tensor([images.length, 3, H, W], x);
  const device = (clip as Pick<LoadedClip, 'device'>).device ?? 'cpu';
  // the image tower on the device (on webgpu its weights uploaded once per model and device), the projection on the host
  const byDevice = runners.get(clip.model) ?? new Map<string, Promise<Runner>>();
  runners.set(clip.model, byDevice);
  let runner = byDevice.get(device);
  if (!runner) {
    runner = runnerFor(clip.model.visual, device);
    byDevice.set(device, runner);
    runner.catch(() => byDevice.delete(device)); // a device that could not be opened is asked again next time
  }
  const r = await runner;
  return clip.model.project((await r.embed(px)).data, images.length);
}

const runners = new WeakMap<ClipModel, Map<string, Promise<Runner>>>();

/** texts -> text_embeds (T, E) before normalisation (tokenized with the checkpoint's tokenizer) */
export function encodeText(clip: Pick<LoadedClip, 'model' | 'tokenizer'>, texts: readonly string[]): Tensor {
  if (texts.length === 0) throw new VitkitError('encodeText needs at least one text');
  announceDevice(hostDevice(clip.model.backend), 'the text tower'); // the text tower runs on the host backend
  const t = clip.tokenizer.tokenize(texts, clip.model.config.text.context_length);
  return clip.model.encodeText(t.ids, t.shape);
}

export interface ZeroShotPrediction {
  label: string;
  index: number;
  /** the softmax probability (transformers.js' name) */
  score: number;
}

export class ZeroShotClassifier {
  readonly labels: readonly string[];
  readonly templates: readonly string[];
  /** (K, E) unit rows: one ensemble embedding per label */
  readonly weights: Tensor;
  private readonly clip: Pick<LoadedClip, 'model' | 'preprocess' | 'tokenizer'>;

  constructor(clip: Pick<LoadedClip, 'model' | 'preprocess' | 'tokenizer'>, labels: readonly string[], weights: Tensor, templates: readonly string[]) {
    this.clip = clip;
    this.labels = labels;
    this.weights = weights;
    this.templates = templates;
  }

  /** probabilities (B, K) of image embeddings (B, E) (not necessarily normalised) */
  probabilities(imageEmbeds: Tensor): Tensor {
    const [B, E] = imageEmbeds.shape as [number, number];
    const K = this.labels.length;
    if (E !== this.weights.shape[1]) throw new VitkitError(`Expected image embeddings of width ${this.weights.shape[1]} but received ${E}`);
    const img = normalizeRows(imageEmbeds), scale = Math.exp(this.clip.model.logitScale);
    const out = new Float32Array(B * K); // (B, K)
    for (let b = 0; b < B; b++) {
      const z = new Float64Array(K);
      let m = -Infinity;
      for (let k = 0; k < K; k++) {
        let s = 0;
        for (let e = 0; e < E; e++) s += img.data[b * E + e]! * this.weights.data[k * E + e]!;
        z[k] = scale * s;
        m = Math.max(m, z[k]!);
      }
      let sum = 0;
      for (let k = 0; k < K; k++) { z[k] = Math.exp(z[k]! - m); sum += z[k]!; }
      for (let k = 0; k < K; k++) out[b * K + k] = z[k]! / sum;
    }
    return new Tensor([B, K], out);
  }

  /** top-k labels per image */
  async classify(images: ReadonlyArray<string | Uint8Array>, topK = 5): Promise<ZeroShotPrediction[][]> {
    const p = this.probabilities(await encodeImage(this.clip, images));
    const K = this.labels.length, k = Math.min(Math.max(1, topK), K);
    const out: ZeroShotPrediction[][] = [];
    for (let b = 0; b < images.length; b++) {
      const row = Array.from({ length: K }, (_, j) => ({ label: this.labels[j]!, index: j, score: p.data[b * K + j]! }));
      row.sort((a, c) => c.score - a.score || a.index - c.index);
      out.push(row.slice(0, k));
    }
    return out;
  }
}

/** CLIP's zero-shot classifier over `labels`, with a prompt ensemble of `templates` ('{}' is replaced by the label). */
export function zeroShotClassifier(clip: Pick<LoadedClip, 'model' | 'preprocess' | 'tokenizer'>, labels: readonly string[], templates: readonly string[] = DEFAULT_TEMPLATES): ZeroShotClassifier {
  if (labels.length === 0) throw new VitkitError('zeroShotClassifier needs at least one label');
  if (templates.length === 0) throw new VitkitError('zeroShotClassifier needs at least one template');
  for (const t of templates) if (!t.includes('{}')) throw new VitkitError(`Template ${JSON.stringify(t)} has no {} where the label goes`);
  const E = clip.model.config.embed_dim, K = labels.length, T = templates.length;
  const w = new Float32Array(K * E); // (K, E)
  for (let k = 0; k < K; k++) {
    const emb = normalizeRows(encodeText(clip, templates.map((t) => t.split('{}').join(labels[k]!)))); // (T, E)
    const mean = new Float64Array(E);
    for (let t = 0; t < T; t++) for (let e = 0; e < E; e++) mean[e] = mean[e]! + emb.data[t * E + e]! / T;
    let n = 0;
    for (let e = 0; e < E; e++) n += mean[e]! * mean[e]!;
    n = Math.max(Math.sqrt(n), 1e-12);
    for (let e = 0; e < E; e++) w[k * E + e] = mean[e]! / n;
  }
  return new ZeroShotClassifier(clip, labels, new Tensor([K, E], w), templates);
}
