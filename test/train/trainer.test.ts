/** Trainer: learning on a fixed batch, schedule / clipping wiring, exact resume, EMA evaluation. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randn } from '../helpers.js';
import { resolveConfig } from '../../src/models/config.js';
import { VisionTransformer } from '../../src/models/vit.js';
import { getBackend } from '../../src/backend/index.js';
import { initWeights } from '../../src/checkpoint/checkpoint.js';
import { Tensor } from '../../src/tensor.js';
import { Trainer, type TrainerOptions } from '../../src/train/trainer.js';
import { saveTrainerState, loadTrainerState } from '../../src/train/trainer_file.js';
import { VitkitError } from '../../src/errors.js';

const config = resolveConfig({ img_size: 16, patch_size: 4, in_chans: 1, embed_dim: 24, num_heads: 3, depth: 2, mlp_ratio: 2, num_classes: 4 });
const B = 8;
const x = new Tensor([B, 1, 16, 16], randn(B * 256, 9));
const y = Int32Array.from({ length: B }, (_, b) => b % 4);

function fresh(): VisionTransformer {
  const m = new VisionTransformer(config, undefined, getBackend('native'));
  initWeights(m, 4);
  return m;
}

const OPTS: TrainerOptions = { lr: 3e-3, weightDecay: 0.05, labelSmoothing: 0.1, schedule: 'cosine', warmupSteps: 2, totalSteps: 8, clipGrad: 1.0, emaDecay: 0.9 };

test('Trainer fits a fixed batch; reports the scheduled lr and the unclipped norm', async () => {
  const tr = new Trainer(fresh(), OPTS);
  const first = (await tr.evaluate(x, y)).loss;
  const rs = [];
  for (let i = 0; i < 8; i++) rs.push(await tr.step(x, y));
  assert.equal(rs[0]!.lr, 3e-3 / 2);
  assert.equal(rs[1]!.lr, 3e-3);
  assert.ok(Math.abs(rs[5]!.lr - 3e-3 * 0.5 * (1 + Math.cos(Math.PI * 3 / 6))) < 1e-15);
  assert.ok(rs.every((r) => Number.isFinite(r.gradNorm) && r.gradNorm > 0));
  const after = await tr.evaluate(x, y);
  assert.ok(after.loss < first * 0.8, `loss ${first} -> ${after.loss}`);
  assert.equal(after.count, B);
  assert.equal(tr.stepCount, 8);
  const ema = await tr.evaluate(x, y, { ema: true });
  assert.ok(Number.isFinite(ema.loss) && ema.loss !== after.loss);
});

test('Trainer resume (state + weights) continues bit-exactly, also through a state file', async () => {
  const a = new Trainer(fresh(), OPTS);
  for (let i = 0; i < 5; i++) await a.step(x, y);
  const weights = a.model.params.buffer.slice();
  const dir = mkdtempSync(path.join(tmpdir(), 'vitkit-trainer-'));
  try {
    const file = path.join(dir, 'state.safetensors');
    saveTrainerState(file, await a.state());
    const m = fresh();
    m.params.buffer.set(weights);
    const b = new Trainer(m, OPTS);
    b.loadState(loadTrainerState(file));
    assert.equal(b.stepCount, 5);
    for (let i = 0; i < 3; i++) {
      const ra = await a.step(x, y), rb = await b.step(x, y);
      assert.deepEqual(rb, ra);
    }
    assert.deepEqual([...b.model.params.buffer], [...a.model.params.buffer]);
    assert.deepEqual([...(await b.state()).ema!], [...(await a.state()).ema!]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Trainer rejects mismatched targets and bad options', async () => {
  const tr = new Trainer(fresh(), { lr: 1e-3 });
  assert.equal(tr.schedule.kind, 'constant');
  await assert.rejects(tr.step(x, new Int32Array(3)), /8 images but the targets have 3/);
  await assert.rejects(tr.step(x, new Int32Array(8).fill(9)), /Target 9 at index 0/);
  await assert.rejects(tr.evaluate(x, y, { ema: true }), VitkitError);
  assert.throws(() => new Trainer(fresh(), { lr: 1e-3, clipGrad: 0 }), /clipGrad/);
  assert.throws(() => new Trainer(fresh(), { lr: 1e-3, schedule: 'cosine' }), /totalSteps/);
  // soft targets (B*K) are accepted
  const soft = new Float32Array(B * 4).fill(0.25);
  assert.ok(Number.isFinite((await tr.step(x, soft)).loss));
});
