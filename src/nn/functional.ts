/** Small row-wise helpers on plain arrays used by the CLI and explain code (not hot paths). */

/** softmax over rows of x (R, C), in float64, returned as float32 */
export function softmax(x: Float32Array, R: number, C: number): Float32Array {
  const out = new Float32Array(R * C);
  for (let r = 0; r < R; r++) {
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, x[r * C + c]!);
    let s = 0;
    for (let c = 0; c < C; c++) s += Math.exp(x[r * C + c]! - m);
    for (let c = 0; c < C; c++) out[r * C + c] = Math.exp(x[r * C + c]! - m) / s;
  }
  return out;
}

/** indices of the k largest values, largest first (ties: lower index first) */
export function topK(row: ArrayLike<number>, k: number): number[] {
  const idx = Array.from({ length: row.length }, (_, i) => i);
  idx.sort((a, b) => row[b]! - row[a]! || a - b);
  return idx.slice(0, k);
}

/**
 * Index of the largest of x[start], ..., x[start + n - 1], counted from start (first maximum wins,
 * as torch.argmax; NaN never wins). The one argmax of the toolkit: argmaxRows, accuracy, top-1,
 * the hottest patch, the CLIP text pool and YOLOS's class pick all call it.
 */
export function argmax(x: ArrayLike<number>, start = 0, n = x.length - start): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (x[start + i]! > x[start + best]!) best = i;
  return best;
}

/** argmax of each row of x (R, C) */
export function argmaxRows(x: ArrayLike<number>, R: number, C: number): Int32Array {
  const out = new Int32Array(R); // (R)
  for (let r = 0; r < R; r++) out[r] = argmax(x, r * C, C);
  return out;
}
