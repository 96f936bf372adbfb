/** Tensor files: safetensors holding `x` (B, C, H, W) float (already normalized) and `y` (B) integer labels. */
import { VitkitError, shapeStr } from '../errors.js';
import { readSafetensors } from '../io/safetensors.js';
import { type F32Dataset, sharedF32, sharedI32 } from './dataset.js';

export function loadTensorFile(file: string): F32Dataset {
  const st = readSafetensors(file);
  for (const k of ['x', 'y']) {
    if (!st.has(k)) throw new VitkitError(`Expected tensors "x" (B, C, H, W) and "y" (B) in ${file} but received ${st.keys().map((s) => JSON.stringify(s)).join(', ') || 'no tensors'}`);
  }
  const x = st.f32('x');
  const y = st.i64('y');
  if (x.shape.length !== 4) throw new VitkitError(`Expected x of shape (B, C, H, W) in ${file} but received ${shapeStr(x.shape)}`);
  if (y.shape.length !== 1) throw new VitkitError(`Expected y of shape (B) in ${file} but received ${shapeStr(y.shape)}`);
  const [B, C, H, W] = x.shape as [number, number, number, number];
  if (y.shape[0] !== B) throw new VitkitError(`Expected y of shape (${B}) to match x ${shapeStr(x.shape)} in ${file} but received ${shapeStr(y.shape)}`);
  if (B === 0) throw new VitkitError(`Expected at least one sample in ${file} but received x ${shapeStr(x.shape)}`);
  const labels = sharedI32(B);
  for (let i = 0; i < B; i++) {
    const v = y.data[i]!;
    if (v < 0n || v > 2147483647n) throw new VitkitError(`Expected a label >= 0 for sample ${i} of ${file} but received ${v}`);
    labels[i] = Number(v);
  }
  const data = sharedF32(x.data.length);
  data.set(x.data);
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i]!)) throw new VitkitError(`Expected finite values in x of ${file} but received ${data[i]} at sample ${Math.floor(i / (C * H * W))}`);
  }
  return { kind: 'f32', name: file, n: B, channels: C, height: H, width: W, labels, data };
}
