/**
 * `vitkit run` on a YOLOS checkpoint: pixel_values (B, 3, H, W) from a safetensors file ->
 * pred_logits (B, Q, K + 1), pred_boxes (B, Q, 4), last_attention (B, NH, N, N) (the last block's
 * softmax attention) and attentions.{i} (every block's).
 */
import { VitkitError, shapeStr } from '../errors.js';
import { readSafetensors, type StTensorIn } from '../io/safetensors.js';
import { Tensor } from '../tensor.js';
import { loadYolos } from './load.js';

export const YOLOS_RUN_OUTPUTS = ['pred_logits', 'pred_boxes', 'last_attention', 'attentions'] as const;

export function runYolos(dir: string, input: string, outputs: readonly string[]): Record<string, StTensorIn> {
  const bad = outputs.filter((o) => !(YOLOS_RUN_OUTPUTS as readonly string[]).includes(o));
  if (bad.length) throw new VitkitError(`Output ${bad.join(', ')} is not produced by a YOLOS model (${dir}); expected some of ${YOLOS_RUN_OUTPUTS.join(', ')}`);
  const { model } = loadYolos(dir);
  const st = readSafetensors(input);
  if (!st.has('pixel_values')) throw new VitkitError(`${input} has no tensor "pixel_values" (B, 3, H, W); it has: ${st.keys().join(', ') || 'no tensors'}`);
  const pv = st.f32('pixel_values');
  if (pv.shape.length !== 4) throw new VitkitError(`pixel_values in ${input} must be (B, C, H, W) but has shape ${shapeStr(pv.shape)}`);
  const wantAttn = outputs.includes('last_attention') || outputs.includes('attentions');
  const out = model.forward(new Tensor(pv.shape, pv.data), { attentions: wantAttn });
  const res: Record<string, StTensorIn> = {};
  const put = (name: string, t: Tensor) => { res[name] = { shape: t.shape, data: t.data }; };
  if (outputs.includes('pred_logits')) put('pred_logits', out.logits);
  if (outputs.includes('pred_boxes')) put('pred_boxes', out.boxes);
  if (outputs.includes('last_attention')) put('last_attention', out.attentions![out.attentions!.length - 1]!);
  if (outputs.includes('attentions')) out.attentions!.forEach((a, i) => put(`attentions.${i}`, a));
  return res;
}
