/**
 * YOLOS training parity with hustvl/YOLOS's SetCriterion, HungarianMatcher and main.py's AdamW
 * groups (shared/refs/yolos_det/train_ref.safetensors, computed in float64 by the authors' code):
 * the step-1 matching exactly, loss_ce / loss_bbox / loss_giou within 1e-5 (class_error and
 * cardinality_error too), every parameter's step-1 gradient within 1e-4 x its tensor's max, the
 * losses before each of 3 AdamW steps, and the parameters after them under the refs README's
 * after-3 rule (noise-gradient elements within 3 lr; others within 1e-5 + min(3 lr, 3 lr eps tau / (|g| + eps)^2),
 * tau = 3e-7 x the tensor's max |g|).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { FIXTURES, REFS, maxAbs, needRefs } from '../helpers.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { Tensor } from '../../src/tensor.js';
import { loadYolos } from '../../src/detect/load.js';
import { DetTrainer, yolosDecays } from '../../src/detect/train.js';
import type { DetTarget } from '../../src/detect/criterion.js';

const TRAIN_REF = path.join(REFS, 'yolos_det', 'train_ref.safetensors');
const LR = 1e-3, EPS = 1e-8;

function setup() {
  const { model } = loadYolos(path.join(FIXTURES, 'yolos_det'));
  const ref = readSafetensors(TRAIN_REF);
  const xv = ref.f32('x');
  const x = new Tensor(xv.shape, xv.data);
  const targets: DetTarget[] = [0, 1].map((b) => ({
    labels: Array.from(ref.i64(`targets.${b}.labels`).data, Number),
    boxes: ref.f32(`targets.${b}.boxes`).data,
  }));
  const trainer = new DetTrainer(model, { lr: LR, weightDecay: 1e-4, betas: [0.9, 0.999], eps: EPS, clipMaxNorm: 0 });
  return { model, ref, x, targets, trainer };
}

test('YOLOS optimizer groups are main.py\'s: heads decay (biases too), backbone 1-D / bias / pos_embed / cls_token / det_token do not', () => {
  assert.equal(yolosDecays('class_embed.layers.0.bias', [64]), true);
  assert.equal(yolosDecays('bbox_embed.layers.2.weight', [4, 64]), true);
  assert.equal(yolosDecays('backbone.blocks.0.attn.qkv.weight', [192, 64]), true);
  assert.equal(yolosDecays('backbone.patch_embed.proj.weight', [64, 3, 16, 16]), true);
  for (const [n, s] of [['backbone.pos_embed', [1, 35, 64]], ['backbone.cls_token', [1, 1, 64]], ['backbone.det_token', [1, 10, 64]],
    ['backbone.norm.weight', [64]], ['backbone.blocks.1.mlp.fc1.bias', [256]]] as const) assert.equal(yolosDecays(n, s), false, n);
});

test('YOLOS training: step-1 matching, losses and every gradient = hustvl/YOLOS (float64 reference)', (t) => {
  if (!needRefs(t, TRAIN_REF)) return;
  const { model, ref, x, targets, trainer } = setup();
  const res = trainer.lossAndGrads(x, targets);
  for (let b = 0; b < 2; b++) {
    assert.deepEqual(Array.from(res.matches[b]!.pred), Array.from(ref.i64(`match.${b}.pred`).data, Number), `match.${b}.pred`);
    assert.deepEqual(Array.from(res.matches[b]!.target), Array.from(ref.i64(`match.${b}.target`).data, Number), `match.${b}.target`);
  }
  const one = (k: string) => ref.f32(k).data[0]!;
  const errs = { ce: Math.abs(res.lossCe - one('step1.loss_ce')), bbox: Math.abs(res.lossBbox - one('step1.loss_bbox')), giou: Math.abs(res.lossGiou - one('step1.loss_giou')) };
  assert.ok(errs.ce <= 1e-5 && errs.bbox <= 1e-5 && errs.giou <= 1e-5, `losses: ${JSON.stringify(errs)}`);
  assert.ok(Math.abs(res.classError - one('step1.class_error')) <= 1e-3, `class_error ${res.classError} vs ${one('step1.class_error')}`);
  assert.ok(Math.abs(res.cardinalityError - one('step1.cardinality_error')) <= 1e-6, `cardinality_error ${res.cardinalityError}`);
  assert.ok(Math.abs(res.loss - one('losses')) <= 1e-4, `loss ${res.loss} vs ${one('losses')}`);
  let worst = { name: '', rel: 0 };
  for (const name of model.params.names()) {
    const g = trainer.grads.get(name), r = ref.f32(`grad.${name}`).data;
    const scale = maxAbs(r);
    let err = 0;
    for (let i = 0; i < r.length; i++) err = Math.max(err, Math.abs(g[i]! - r[i]!));
    assert.ok(err <= 1e-4 * scale, `grad.${name}: max abs error ${err} > 1e-4 x ${scale}`);
    if (err / scale > worst.rel) worst = { name, rel: err / scale };
  }
  console.log(`step 1: loss_ce err ${errs.ce.toExponential(2)}, loss_bbox ${errs.bbox.toExponential(2)}, loss_giou ${errs.giou.toExponential(2)}; worst gradient ${worst.name} ${worst.rel.toExponential(2)} x max`);
});

test('YOLOS training: 3 AdamW steps (losses, parameters under the after-3 rule) = hustvl/YOLOS (float64 reference)', (t) => {
  if (!needRefs(t, TRAIN_REF)) return;
  const { model, ref, x, targets, trainer } = setup();
  const losses: number[] = [];
  for (let s = 0; s < 3; s++) losses.push(trainer.step(x, targets).loss);
  const refLosses = ref.f32('losses').data;
  for (let s = 0; s < 3; s++) assert.ok(Math.abs(losses[s]! - refLosses[s]!) <= 1e-4, `loss before step ${s + 1}: ${losses[s]} vs ${refLosses[s]}`);
  let worst = { name: '', err: 0 }, wellWorst = 0, noise = 0, noiseErr = 0, zeros = 0;
  for (const name of model.params.names()) {
    const p = model.params.get(name), r = ref.f32(`after3.${name}`).data, g = ref.f32(`grad.${name}`).data;
    const gmax = maxAbs(g), tau = 3e-7 * gmax;
    for (let i = 0; i < r.length; i++) {
      const e = Math.abs(p[i]! - r[i]!), ag = Math.abs(g[i]!);
      if (ag <= 1e-7 * gmax) { noise++; if (g[i] === 0) zeros++; noiseErr = Math.max(noiseErr, e); assert.ok(e <= 3 * LR, `after3.${name}[${i}] (noise gradient): ${e}`); continue; }
      const tol = 1e-5 + Math.min(3 * LR, (3 * LR * EPS * tau) / (ag + EPS) ** 2);
      assert.ok(e <= tol, `after3.${name}[${i}]: error ${e} > ${tol} (g ${g[i]})`);
      if (e > worst.err) worst = { name, err: e };
      if (tol - 1e-5 <= 1e-9) wellWorst = Math.max(wellWorst, e);
    }
  }
  console.log(`losses ${losses.map((l) => l.toFixed(6)).join(', ')} vs ${Array.from(refLosses, (l) => l.toFixed(6)).join(', ')}; after 3 steps worst ${worst.name} ${worst.err.toExponential(2)}, worst well-conditioned (added term <= 1e-9) ${wellWorst.toExponential(2)} (${noise} noise-gradient elements, ${zeros} of them exactly 0 in the reference, worst ${noiseErr.toExponential(2)})`);
});
