/**
 * Cosine-similarity few-shot classification with class prototypes (as in Snell et al.'s
 * prototypical networks, with cosine instead of Euclidean distance): each class's prototype is
 * the mean of its L2-normalized support embeddings, and a query is assigned the class whose
 * prototype has the highest cosine similarity with it.
 */
import { argmaxRows } from '../nn/functional.js';
import { VitkitError } from '../errors.js';

/** Row-wise L2 normalization of x (n, D) in place (zero rows stay zero); returns x. */
export function l2normalize(x: Float32Array, n: number, D: number): Float32Array {
  if (x.length !== n * D) throw new VitkitError(`Expected ${n} x ${D} = ${n * D} values to normalize but received ${x.length}`);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < D; j++) s += x[i * D + j]! * x[i * D + j]!;
    if (s === 0) continue;
    const inv = 1 / Math.sqrt(s);
    for (let j = 0; j < D; j++) x[i * D + j] = x[i * D + j]! * inv;
  }
  return x;
}

/** Cosine similarity of two vectors (0 when either is zero). */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new VitkitError(`Expected vectors of the same length but received ${a.length} and ${b.length}`);
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) { ab += a[i]! * b[i]!; aa += a[i]! * a[i]!; bb += b[i]! * b[i]!; }
  return aa === 0 || bb === 0 ? 0 : ab / Math.sqrt(aa * bb);
}

/**
 * Prototypes (K, D): per class, the mean of the L2-normalized embeddings of its examples,
 * normalized again. emb (n, D), labels (n) in [0, K).
 */
export function classPrototypes(emb: Float32Array, labels: ArrayLike<number>, K: number, D: number): Float32Array {
  const n = labels.length;
  if (emb.length !== n * D) throw new VitkitError(`Expected ${n} support embeddings of ${D} values but received ${emb.length} values`);
  const protos = new Float64Array(K * D);
  const counts = new Int32Array(K);
  for (let i = 0; i < n; i++) {
    const y = labels[i]!;
    if (!Number.isInteger(y) || y < 0 || y >= K) throw new VitkitError(`Expected support labels in [0, ${K - 1}] but received ${y}`);
    let s = 0;
    for (let j = 0; j < D; j++) s += emb[i * D + j]! * emb[i * D + j]!;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let j = 0; j < D; j++) protos[y * D + j]! += emb[i * D + j]! * inv;
    counts[y]!++;
  }
  const empty = [...counts].findIndex((c) => c === 0);
  if (empty >= 0) throw new VitkitError(`Class ${empty} has no support examples: every class needs at least one`);
  const out = new Float32Array(K * D);
  for (let k = 0; k < K; k++) for (let j = 0; j < D; j++) out[k * D + j] = protos[k * D + j]! / counts[k]!;
  return l2normalize(out, K, D);
}

/** Cosine similarity of each query (m, D) with each prototype (K, D): scores (m, K). */
export function prototypeScores(queries: Float32Array, protos: Float32Array, K: number, D: number): Float32Array {
  const m = queries.length / D;
  if (!Number.isInteger(m) || protos.length !== K * D) throw new VitkitError(`Expected queries of ${D} values and ${K} prototypes of ${D} values`);
  const out = new Float32Array(m * K);
  for (let i = 0; i < m; i++) {
    const q = queries.subarray(i * D, (i + 1) * D);
    for (let k = 0; k < K; k++) out[i * K + k] = cosine(q, protos.subarray(k * D, (k + 1) * D));
  }
  return out;
}

/** Index of the highest score in each row of scores (m, K); ties go to the lower index. */
export function nearestPrototype(scores: Float32Array, K: number): Int32Array {
  return argmaxRows(scores, scores.length / K, K);
}
