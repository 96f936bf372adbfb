/**
 * `vitkit run` on an MAE checkpoint: pixel_values (B, C, S, S) and optionally noise (B, L) from a
 * safetensors file -> loss (1), pred (B, L, p*p*C), mask (B, L), ids_restore (B, L) int64,
 * latent (B, 1 + K, D), reconstruction and pasted (B, C, S, S), as facebookresearch/mae's forward
 * and its demo compute them. Without noise the masking comes from --seed's generator.
 */
import { VitkitError, shapeStr } from '../errors.js';
import { readSafetensors, type StTensorIn } from '../io/safetensors.js';
import { Rng } from '../data/rng.js';
import { loadMae } from './load.js';

export const MAE_RUN_OUTPUTS = ['loss', 'pred', 'mask', 'ids_restore', 'latent', 'reconstruction', 'pasted'] as const;

export function runMae(modelSource: string, input: string, outputs: readonly string[], opts: { seed?: number; maskRatio?: number } = {}): Record<string, StTensorIn> {
  const bad = outputs.filter((o) => !(MAE_RUN_OUTPUTS as readonly string[]).includes(o));
  if (bad.length) throw new VitkitError(`Output ${bad.join(', ')} is not an MAE output; ${modelSource} is a masked autoencoder: expected ${MAE_RUN_OUTPUTS.join(', ')}`);
  const model = loadMae(modelSource);
  const st = readSafetensors(input);
  if (!st.has('pixel_values')) throw new VitkitError(`${input} has no tensor "pixel_values" (B, C, H, W); it has: ${st.keys().join(', ') || 'no tensors'}`);
  const pv = st.f32('pixel_values');
  const B = model.checkInput(pv.shape), L = model.L;
  let noise: Float32Array | undefined;
  if (st.has('noise')) {
    const n = st.f32('noise');
    if (n.shape.length !== 2 || n.shape[0] !== B || n.shape[1] !== L) throw new VitkitError(`Expected noise of shape (${B}, ${L}) in ${input} but received ${shapeStr(n.shape)}`);
    noise = n.data;
  }
  const out = model.forward(pv.data, pv.shape, { ...(noise ? { noise } : { rng: new Rng(opts.seed ?? 0) }), ...(opts.maskRatio !== undefined ? { maskRatio: opts.maskRatio } : {}) });
  const m = out.masking, c = model.config;
  const res: Record<string, StTensorIn> = {};
  const want = (k: string) => outputs.includes(k);
  if (want('loss')) res['loss'] = { shape: [1], data: Float32Array.of(out.loss) };
  if (want('pred')) res['pred'] = { shape: [B, L, model.KP], data: out.pred };
  if (want('mask')) res['mask'] = { shape: [B, L], data: m.mask };
  if (want('ids_restore')) res['ids_restore'] = { shape: [B, L], data: BigInt64Array.from(m.idsRestore, (v) => BigInt(v)) };
  if (want('latent')) res['latent'] = { shape: [B, 1 + m.K, c.embed_dim], data: out.latent };
  if (want('reconstruction') || want('pasted')) {
    const p = model.pictures(pv.data, out.pred, m);
    if (want('reconstruction')) res['reconstruction'] = { shape: pv.shape, data: p.reconstruction };
    if (want('pasted')) res['pasted'] = { shape: pv.shape, data: p.pasted };
  }
  return res;
}
