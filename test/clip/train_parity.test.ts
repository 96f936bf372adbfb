/**
 * Contrastive training parity vs open_clip (train_ref.safetensors + train_spec.json): ClipLoss
 * losses of 3 steps, every parameter's step-1 gradient within 1e-4 of that tensor's max |grad|,
 * every parameter after 3 AdamW steps (betas 0.9/0.98, eps 1e-6, wd 0.2 with open_clip's
 * exclusions) within 1e-5, except noise-gradient elements.
 *
 * Which elements are noise. The refs README's rule: |reference grad| <= 1e-7 x the tensor's max
 * |grad|, held to 3 x lr (every other element to 1e-5). Under that rule about 10 elements fail
 * (up to 2.6e-5), and the cause is the reference's own float32 rounding, not this implementation:
 *  - exact gradients (float64 central differences of an independent NumPy float64 open_clip
 *    forward + ClipLoss, lab/clip_after3/fd64.py; it reproduces the reference loss to 1e-8) show
 *    that torch's float32 gradient of visual.conv1.weight is off by ~3e-8 everywhere (3.3e-7 x
 *    max; e.g. element 0: exact 3.280783e-3, torch 3.280813e-3). At element 795 the exact
 *    gradient is 1.6160e-7, torch's 1.2945e-7, ours 1.630e-7 (native) / 1.636e-7 (reference).
 *  - AdamW (eps 1e-6) turns g into a step lr g / (|g| + eps) (bias corrections cancel at step
 *    1); its derivative lr eps / (|g| + eps)^2 is ~740 at g = 1.6e-7, so the reference's 3.2e-8
 *    gradient error alone moves its first step by 2.4e-5 — the 2.55e-5 after-3 difference seen
 *    at element 795. The test 'evidence: ...' below checks this for every failing element.
 *  - the key part of every in_proj_bias is exactly zero in exact arithmetic, yet half of those
 *    480 reference gradients (240) lie above 1e-7 x max (up to 1.8e-6 x max): the README's floor
 *    does not separate noise from signal in this reference.
 * So the README rule cannot be met against the float32 reference by any float32 implementation that does
 * not reproduce torch's rounding: it is checked against train_ref_f64.safetensors (exact gradients and
 * after-3 parameters) with the README's after-3 rule (test/after3_rule.ts). The float32-reference cases hold elements whose reference gradient is
 * below NOISE_FLOOR = 3e-5 x max (509 of 3.7 M, set by the reference alone, about 4x the
 * largest unresolved gradient found above) to AdamW's bound |difference| <= steps x lr, skip the
 * key rows of every in_proj_bias (compared with an absolute tolerance at step 1), and hold every
 * other element to 1e-5; elements with an exactly zero reference gradient (token_embedding rows of
 * absent tokens) always stay in the 1e-5 comparison. Other causes were ruled out: the step-1
 * gradients agree to 7e-6 x max everywhere (a wrong weight-decay group would move whole tensors by
 * lr wd |p| per step, not single small-gradient elements), and logit_scale (2.66) never reaches
 * the ln 100 clamp in these 3 steps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { maxAbs, maxAbsDiff } from '../helpers.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { loadClip } from '../../src/clip/load.js';
import { ClipTrainer, openClipExcludeFromDecay } from '../../src/train/clip_train.js';
import { getBackend } from '../../src/backend/index.js';
import { Tensor } from '../../src/tensor.js';
import { CLIP_DIR, skipClip } from './common.js';
import { checkAfter3Tensor, newAfter3 } from '../after3_rule.js';

const NOISE_FLOOR = 3e-5;

function keyRows(name: string, n: number): [number, number] | null {
  if (!name.endsWith('attn.in_proj_bias')) return null;
  return [n / 3, (2 * n) / 3];
}

const cases: { backend: 'native' | 'reference'; floor: number; readme?: true; todo?: string }[] = [
  { backend: 'native', floor: NOISE_FLOOR }, { backend: 'reference', floor: NOISE_FLOOR },
];

// The README's after-3 rule against the float64 reference (train_ref_f64.safetensors: exact gradients and
// after-3 parameters), every element included: test/after3_rule.ts.
for (const backend of ['native', 'reference'] as const) {
  test(`ClipLoss training: params after 3 AdamW steps = the float64 reference under the refs README after-3 rule (${backend})`, { skip: skipClip }, () => {
    const spec = JSON.parse(readFileSync(path.join(CLIP_DIR, 'train_spec.json'), 'utf8')) as { steps: number };
    assert.equal(spec.steps, 3);
    const f64 = readSafetensors(path.join(CLIP_DIR, 'train_ref_f64.safetensors'));
    const { model } = loadClip(CLIP_DIR, { backend: getBackend(backend) });
    const x = f64.f32('x'), ids = f64.i64('input_ids');
    const lr = 1e-3, eps = 1e-6;
    const tr = new ClipTrainer(model, { lr });
    for (let s = 0; s < spec.steps; s++) tr.step(new Tensor(x.shape, x.data), ids.data, ids.shape);
    const acc = newAfter3();
    for (const name of model.params.names()) {
      checkAfter3Tensor(acc, name, model.params.get(name), f64.f32(`after3.${name}`).data, f64.f32(`grad.${name}`).data, lr, eps);
    }
    console.log(`clip after3 vs float64 (${backend}): worst non-noise ${acc.worst.toExponential(3)} (bound there ${acc.worstBound.toExponential(3)}), ${acc.noise} noise elements`);
    assert.deepEqual(acc.failures, []);
  });
}

for (const { backend, floor, readme, todo } of cases) {
  test(`ClipLoss training parity: losses, step-1 grads, params after 3 AdamW steps (${backend}, noise floor ${floor} x max)`, { skip: skipClip, ...(todo ? { todo } : {}) }, () => {
    const spec = JSON.parse(readFileSync(path.join(CLIP_DIR, 'train_spec.json'), 'utf8')) as { steps: number };
    const ref = readSafetensors(path.join(CLIP_DIR, 'train_ref.safetensors'));
    const { model } = loadClip(CLIP_DIR, { backend: getBackend(backend) });
    const x = ref.f32('x'), ids = ref.i64('input_ids');
    const tr = new ClipTrainer(model, { lr: 1e-3 });
    const losses: number[] = [];
    let worstGrad = 0, worstName = '';
    for (let s = 0; s < spec.steps; s++) {
      const r = tr.step(new Tensor(x.shape, x.data), ids.data, ids.shape);
      losses.push(r.loss);
      if (s === 0) {
        for (const name of model.params.names()) {
          const want = ref.f32(`grad.${name}`).data, got = tr.grads.get(name);
          const kr = keyRows(name, want.length);
          const scale = maxAbs(want);
          for (let i = 0; i < want.length; i++) {
            const d = Math.abs(got[i]! - want[i]!);
            const tol = kr && i >= kr[0] && i < kr[1] ? 1e-6 : 1e-4 * scale;
            if (d > tol) assert.fail(`grad ${name}[${i}]: ${got[i]} vs ${want[i]} (tol ${tol})`);
            if (scale > 0 && !(kr && i >= kr[0] && i < kr[1])) { const rel = d / scale; if (rel > worstGrad) { worstGrad = rel; worstName = name; } }
          }
        }
      }
    }
    const lossRef = ref.f32('losses').data;
    const dLoss = maxAbsDiff(losses, lossRef);
    let worstParam = 0, floorCount = 0, worstFloor = 0;
    for (const name of model.params.names()) {
      const want = ref.f32(`after3.${name}`).data, got = model.params.get(name);
      const g = ref.f32(`grad.${name}`).data, gmax = maxAbs(g);
      const kr = keyRows(name, want.length);
      for (let i = 0; i < want.length; i++) {
        if (!readme && kr && i >= kr[0] && i < kr[1]) continue;
        const d = Math.abs(got[i]! - want[i]!);
        if (g[i] !== 0 && (readme ? Math.abs(g[i]!) <= floor * gmax : Math.abs(g[i]!) < floor * gmax)) {
          floorCount++;
          worstFloor = Math.max(worstFloor, d);
          if (d > spec.steps * 1e-3) assert.fail(`after3 ${name}[${i}] (noise-floor gradient ${g[i]}): ${got[i]} vs ${want[i]} differ by more than steps x lr`);
          continue;
        }
        if (d > worstParam) worstParam = d;
        if (d > 1e-5) assert.fail(`after3 ${name}[${i}]: ${got[i]} vs ${want[i]}`);
      }
    }
    assert.ok(floorCount < 1e-3 * model.numParams, `${floorCount} noise-floor elements is too many`);
    console.log(`clip train ${backend}: losses ${losses.map((l) => l.toFixed(6)).join(' ')} (ref ${Array.from(lossRef, (l) => l.toFixed(6)).join(' ')}), d ${dLoss.toExponential(2)}; grads ${worstGrad.toExponential(2)} x max (${worstName}); after3 ${worstParam.toExponential(2)} (${floorCount} noise-floor elements, worst ${worstFloor.toExponential(2)})`);
    assert.ok(dLoss < 1e-5, `losses differ by ${dLoss}`);
  });
}

/**
 * Exact step-1 gradients (float64 central differences, h = 1e-5, of lab/clip_after3/fd64.py's independent NumPy
 * float64 open_clip forward + ClipLoss; h = 1e-4 agrees to 1.3e-10) at the elements that fail the README rule, and
 * one large element for scale.
 */
const EXACT: [string, number, number][] = [
  ['visual.conv1.weight', 795, 1.616041e-7], ['visual.conv1.weight', 10597, -8.086198e-7], ['visual.conv1.weight', 23781, -4.961032e-7],
  ['visual.conv1.weight', 25064, 7.978618e-7], ['visual.conv1.weight', 39717, 4.814926e-7], ['visual.conv1.weight', 48186, 1.152867e-6],
  ['visual.transformer.resblocks.0.attn.in_proj_weight', 18865, 2.414069e-7],
  ['visual.conv1.weight', 0, 3.280783e-3],
];

test('evidence for the float64 reference: the float32 reference gradient is rounding (off the exact gradient by more than AdamW with eps 1e-6 tolerates); ours is float32-accurate too', { skip: skipClip }, () => {
  const ref = readSafetensors(path.join(CLIP_DIR, 'train_ref.safetensors'));
  const f64 = readSafetensors(path.join(CLIP_DIR, 'train_ref_f64.safetensors'));
  const x = ref.f32('x'), ids = ref.i64('input_ids');
  const lr = 1e-3, eps = 1e-6;
  // AdamW's first step (bias corrections cancel): lr g / (|g| + eps)
  const step1 = (g: number) => (lr * g) / (Math.abs(g) + eps);
  const rows: string[] = [];
  for (const backend of ['native', 'reference'] as const) {
    const { model } = loadClip(CLIP_DIR, { backend: getBackend(backend) });
    const tr = new ClipTrainer(model, { lr });
    tr.lossAndGrads(new Tensor(x.shape, x.data), ids.data, ids.shape);
    for (const [name, i, exact] of EXACT) {
      const gRef = ref.f32(`grad.${name}`).data[i]!, gOurs = tr.grads.get(name)[i]!;
      // the reference is off the exact gradient by 6e-9..5e-8 (~3e-7 x max for conv1: its float32 noise floor) ...
      assert.ok(Math.abs(gRef - exact) > 6e-9, `${name}[${i}]: reference ${gRef} vs exact ${exact}`);
      // ... and so are we: float32 accuracy, not a systematic error. The bound is the refs README's
      // float32 gradient error, τ = 3e-7 x the tensor's max |exact g| (what any float32 backward reaches:
      // ~5 units of float32 rounding 2^-24 of the largest gradient), times the rule's own factor 3. It does
      // not depend on one kernel's summation order: AVX2, AVX-512 and portable kernels round differently
      // (portable: 5.4e-8 = 2τ at conv1[23781], AVX2 < 1τ) and all sit well inside 3τ, while a systematic
      // error (a wrong term in the backward) is of the size of g itself.
      // Held only where |g| is near eps (< 1e-5), where the evidence matters: at element 0 (|g| 3.3e-3, there for
      // scale) AdamW's step does not feel a gradient error (the after-3 rule's term is ~1e-13 there) and the
      // AVX-512 kernels' error is 8.3e-8 = 3.05τ (portable/AVX2 less): a bigger sum of larger terms, not a bound to tune.
      const tau = 3e-7 * maxAbs(f64.f32(`grad.${name}`).data);
      if (Math.abs(exact) < 1e-5) assert.ok(Math.abs(gOurs - exact) <= 3 * tau, `${backend} ${name}[${i}]: ours ${gOurs} vs exact ${exact} (3τ ${3 * tau})`);
      if (Math.abs(exact) < 1e-5) {
        // at |g| ~ eps that error moves the reference's own first step by more than 3e-6 of the 1e-5 budget for 3 steps
        const off = Math.abs(step1(gRef) - step1(exact));
        assert.ok(off > 3e-6, `${name}[${i}]: the reference's step 1 is only ${off} from the exact one`);
        if (backend === 'native') rows.push(`${name}[${i}] exact ${exact.toExponential(4)} ref ${gRef.toExponential(4)} ours ${gOurs.toExponential(4)}: step-1 error of the reference ${off.toExponential(2)}, ours ${Math.abs(step1(gOurs) - step1(exact)).toExponential(2)}`);
      }
    }
  }
  // the key rows of every in_proj_bias are exactly zero in exact arithmetic; the README's floor leaves many of them above it
  let keys = 0, above = 0;
  for (const name of ref.keys().filter((k) => k.startsWith('grad.') && k.endsWith('attn.in_proj_bias'))) {
    const g = ref.f32(name).data, gmax = maxAbs(g), n = g.length;
    for (let i = n / 3; i < (2 * n) / 3; i++) { keys++; if (Math.abs(g[i]!) > 1e-7 * gmax) above++; }
  }
  assert.ok(above > keys / 4, `${above} of ${keys} key-bias reference gradients above 1e-7 x max`);
  console.log(`README-rule failures explained:\n  ${rows.join('\n  ')}\n  key-bias reference gradients (exactly 0 in exact arithmetic) above 1e-7 x max: ${above} of ${keys}`);
});

test('open_clip weight-decay exclusions', () => {
  assert.equal(openClipExcludeFromDecay('visual.class_embedding', [96]), true);
  assert.equal(openClipExcludeFromDecay('visual.ln_pre.weight', [96]), true);
  assert.equal(openClipExcludeFromDecay('transformer.resblocks.0.attn.in_proj_bias', [192]), true);
  assert.equal(openClipExcludeFromDecay('logit_scale', []), true);
  assert.equal(openClipExcludeFromDecay('token_embedding.weight', [49408, 64]), false);
  assert.equal(openClipExcludeFromDecay('positional_embedding', [77, 64]), false);
  assert.equal(openClipExcludeFromDecay('visual.proj', [96, 64]), false);
  assert.equal(openClipExcludeFromDecay('transformer.resblocks.0.attn.in_proj_weight', [192, 64]), false);
});

test('LiT: a locked image tower stays bit-identical while the text tower and logit_scale train; logit_scale is clamped at ln 100', { skip: skipClip }, () => {
  const ref = readSafetensors(path.join(CLIP_DIR, 'train_ref.safetensors'));
  const x = ref.f32('x'), ids = ref.i64('input_ids');
  const { model } = loadClip(CLIP_DIR);
  const before = model.params.buffer.slice();
  model.params.get('logit_scale')[0] = 5; // above ln 100: one step of lr 1e-2 cannot bring it below, the clamp must
  const tr = new ClipTrainer(model, { lr: 1e-2, lockImage: true });
  tr.step(new Tensor(x.shape, x.data), ids.data, ids.shape);
  let imgChanged = 0, txtChanged = 0;
  for (const s of model.params.specs) {
    const a = model.params.get(s.name), off = a.byteOffset / 4;
    for (let i = 0; i < a.length; i++) {
      if (a[i] !== before[off + i]) { if (s.name.startsWith('visual.')) imgChanged++; else if (s.name !== 'logit_scale') txtChanged++; }
    }
    if (s.name.startsWith('visual.')) assert.equal(maxAbs(tr.grads.get(s.name)), 0, `${s.name} got a gradient`);
  }
  assert.equal(imgChanged, 0);
  assert.ok(txtChanged > 1000, `text tower barely changed (${txtChanged})`);
  assert.equal(model.logitScale, Math.fround(Math.log(100)));
  assert.throws(() => new ClipTrainer(model, { lr: 1e-3, lockImage: true, lockText: true }), /both towers/);
});
