/**
 * open_clip's ClipLoss (single process): with logits_per_image = exp(s) * norm(img) @ norm(txt)^T
 * (B, B) and logits_per_text its transpose, labels arange(B):
 *   loss = (CE(logits_per_image, labels) + CE(logits_per_text, labels)) / 2   (each a batch mean)
 * Forward and backward in one pass, double accumulation: gradients w.r.t. the embeddings before
 * normalisation (F.normalize, eps 1e-12) and w.r.t. the logit_scale parameter s.
 */
import { VitkitError } from '../errors.js';

export interface ClipLossResult {
  loss: number;
  /** dL/d image_embeds (B, E) */
  dImage: Float32Array;
  /** dL/d text_embeds (B, E) */
  dText: Float32Array;
  /** dL/d logit_scale (the log of the scale) */
  dLogitScale: number;
  /** (B, B) */
  logitsPerImage: Float32Array;
}

export function clipLoss(image: Float32Array, text: Float32Array, B: number, E: number, logitScale: number): ClipLossResult {
  if (image.length !== B * E || text.length !== B * E) {
    throw new VitkitError(`ClipLoss needs image and text embeddings of (${B}, ${E}); received ${image.length} and ${text.length} values`);
  }
  if (B < 1) throw new VitkitError('ClipLoss needs a batch of at least one pair');
  const norm = (x: Float32Array) => {
    const xn = new Float64Array(B * E), n = new Float64Array(B); // (B, E), (B)
    for (let b = 0; b < B; b++) {
      let s = 0;
      for (let e = 0; e < E; e++) s += x[b * E + e]! * x[b * E + e]!;
      n[b] = Math.max(Math.sqrt(s), 1e-12);
      for (let e = 0; e < E; e++) xn[b * E + e] = x[b * E + e]! / n[b]!;
    }
    return { xn, n };
  };
  const I = norm(image), T = norm(text);
  const scale = Math.exp(logitScale);
  const logits = new Float64Array(B * B); // (B, B) logits_per_image
  for (let i = 0; i < B; i++) {
    for (let j = 0; j < B; j++) {
      let s = 0;
      for (let e = 0; e < E; e++) s += I.xn[i * E + e]! * T.xn[j * E + e]!;
      logits[i * B + j] = scale * s;
    }
  }
  // dlogits (B, B) of logits_per_image: both CE terms, the text one through the transpose
  const dl = new Float64Array(B * B);
  let loss = 0;
  const w = 0.5 / B;
  for (const byRow of [true, false]) {
    for (let a = 0; a < B; a++) {
      const at = (k: number) => (byRow ? logits[a * B + k]! : logits[k * B + a]!);
      let m = -Infinity;
      for (let k = 0; k < B; k++) m = Math.max(m, at(k));
      let z = 0;
      for (let k = 0; k < B; k++) z += Math.exp(at(k) - m);
      loss += w * (Math.log(z) + m - at(a));
      for (let k = 0; k < B; k++) {
        const g = w * (Math.exp(at(k) - m) / z - (k === a ? 1 : 0));
        if (byRow) dl[a * B + k] = dl[a * B + k]! + g; else dl[k * B + a] = dl[k * B + a]! + g;
      }
    }
  }
  let dLogitScale = 0;
  for (let k = 0; k < B * B; k++) dLogitScale += dl[k]! * logits[k]!;
  // d normalised embeddings, then through the normalisation
  const dIn = new Float64Array(B * E), dTn = new Float64Array(B * E);
  for (let i = 0; i < B; i++) {
    for (let j = 0; j < B; j++) {
      const g = scale * dl[i * B + j]!;
      for (let e = 0; e < E; e++) {
        dIn[i * E + e] = dIn[i * E + e]! + g * T.xn[j * E + e]!;
        dTn[j * E + e] = dTn[j * E + e]! + g * I.xn[i * E + e]!;
      }
    }
  }
  const back = (dn: Float64Array, P: { xn: Float64Array; n: Float64Array }) => {
    const out = new Float32Array(B * E); // (B, E)
    for (let b = 0; b < B; b++) {
      let dot = 0;
      for (let e = 0; e < E; e++) dot += dn[b * E + e]! * P.xn[b * E + e]!;
      for (let e = 0; e < E; e++) out[b * E + e] = (dn[b * E + e]! - P.xn[b * E + e]! * dot) / P.n[b]!;
    }
    return out;
  };
  return { loss, dImage: back(dIn, I), dText: back(dTn, T), dLogitScale, logitsPerImage: Float32Array.from(logits) };
}
