/**
 * `vitkit run` on a CLIP checkpoint: reads `pixel_values` (B, 3, H, W) and/or `input_ids` (T, L)
 * (int64 or int32) from a safetensors file and returns the requested outputs:
 * image_embeds (B, E), text_embeds (T, E) (both before normalisation), logits_per_image (B, T),
 * logits_per_text (T, B), probs (B, T) (softmax over the texts).
 */
import { VitkitError, shapeStr } from '../errors.js';
import { readSafetensors, type StTensorIn } from '../io/safetensors.js';
import { Tensor } from '../tensor.js';
import { loadClip } from './load.js';
import { similarityLogits, softmaxRows } from '../models/clip/model.js';
import { announceDevice, hostDevice } from '../backend/devices.js';

export const CLIP_RUN_OUTPUTS = ['image_embeds', 'text_embeds', 'logits_per_image', 'logits_per_text', 'probs'] as const;
export type ClipRunOutput = (typeof CLIP_RUN_OUTPUTS)[number];

export function runClip(dir: string, input: string, outputs: readonly string[]): Record<string, StTensorIn> {
  for (const o of outputs) {
    if (!(CLIP_RUN_OUTPUTS as readonly string[]).includes(o)) throw new VitkitError(`Output ${JSON.stringify(o)} is not available for the CLIP model ${dir}; expected a comma-separated list of ${CLIP_RUN_OUTPUTS.join(', ')}`);
  }
  const st = readSafetensors(input);
  const needImage = outputs.some((o) => o !== 'text_embeds');
  const needText = outputs.some((o) => o !== 'image_embeds');
  if (needImage && !st.has('pixel_values')) throw new VitkitError(`${input} has no tensor "pixel_values" (B, 3, H, W), needed for ${outputs.filter((o) => o !== 'text_embeds').join(', ')}; it has: ${st.keys().join(', ') || 'no tensors'}`);
  if (needText && !st.has('input_ids')) throw new VitkitError(`${input} has no tensor "input_ids" (T, L), needed for ${outputs.filter((o) => o !== 'image_embeds').join(', ')}; it has: ${st.keys().join(', ') || 'no tensors'}`);
  const { model } = loadClip(dir);
  announceDevice(hostDevice(model.backend)); // both towers run on the host backend here
  const res: Record<string, StTensorIn> = {};
  let img: Tensor | undefined, txt: Tensor | undefined;
  if (needImage) {
    const pv = st.f32('pixel_values');
    if (pv.shape.length !== 4) throw new VitkitError(`pixel_values in ${input} must be (B, C, H, W) but has shape ${shapeStr(pv.shape)}`);
    img = model.encodeImage(new Tensor(pv.shape, pv.data));
  }
  if (needText) {
    const e = st.entry('input_ids');
    let ids: BigInt64Array | Int32Array;
    if (e.dtype === 'I64') ids = st.i64('input_ids').data;
    else if (e.dtype === 'I32') ids = new Int32Array(st.bytes('input_ids').buffer.slice(0));
    else throw new VitkitError(`input_ids in ${input} must be int64 or int32 but is ${e.dtype}`);
    txt = model.encodeText(ids, e.shape);
  }
  const put = (k: string, t: Tensor) => { res[k] = { shape: t.shape, data: t.data }; };
  if (outputs.includes('image_embeds')) put('image_embeds', img!);
  if (outputs.includes('text_embeds')) put('text_embeds', txt!);
  if (img && txt) {
    const lpi = similarityLogits(img, txt, Math.exp(model.logitScale));
    if (outputs.includes('logits_per_image')) put('logits_per_image', lpi);
    if (outputs.includes('logits_per_text')) put('logits_per_text', similarityLogits(txt, img, Math.exp(model.logitScale)));
    if (outputs.includes('probs')) put('probs', softmaxRows(lpi));
  }
  return res;
}
