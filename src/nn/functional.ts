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

/** argmax of each row of x (R, C) */
export function argmaxRows(x: Float32Array, R: number, C: number): Int32Array {
  const out = new Int32Array(R);
  for (let r = 0; r < R; r++) {
    let best = 0;
    for (let c = 1; c < C; c++) if (x[r * C + c]! > x[r * C + best]!) best = c;
    out[r] = best;
  }
  return out;
}
