/**
 * timm's `adapt_input_conv` for in_chans 1 (timm/models/_manipulate.py): a 3-channel patch-embedding
 * kernel (O, 3, kh, kw) becomes (O, 1, kh, kw) by summing over the RGB axis in float32, so a gray
 * image x gives what the RGB image (x, x, x) gave. timm's rule for a kernel of more than 3 input
 * channels (sum each group of 3) is the same sum over I = 3g channels, grouped.
 */
import { expected } from '../errors.js';

/** (O, I, kh, kw) float32 -> (O, 1, kh, kw) for I = 3, or (O, I/3, kh, kw) for I a multiple of 3. */
export function adaptInputConvTo1(w: Float32Array, shape: readonly number[]): { data: Float32Array; shape: number[] } {
  if (shape.length !== 4) throw expected('a 4-d (O, I, kh, kw) kernel', 'the patch-embedding weight', shape);
  const [O, I, kh, kw] = shape as [number, number, number, number];
  if (I % 3 !== 0 || w.length !== O * I * kh * kw) throw expected('(O, 3k, kh, kw) with matching data', 'the patch-embedding weight', shape);
  const g = I / 3;
  const k = kh * kw;
  const out = new Float32Array(O * g * k); // (O, g, kh, kw)
  const f = Math.fround;
  for (let o = 0; o < O; o++) {
    for (let j = 0; j < g; j++) {
      for (let p = 0; p < k; p++) {
        // timm reshapes (O, I/3, 3, kh, kw) and sums dim 2 for I > 3; for I = 3 it sums dim 1
        const base = (o * I + (I === 3 ? 0 : j * 3)) * k + p;
        out[(o * g + j) * k + p] = f(f(w[base]! + w[base + k]!) + w[base + 2 * k]!);
      }
    }
  }
  return { data: out, shape: [O, g, kh, kw] };
}
