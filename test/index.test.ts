/** The package entry point: what README's TypeScript example uses works through `vitkit`'s index. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as vitkit from '../src/index.js';
import { FIXTURES, maxAbsDiff } from './helpers.js';

test('the public surface loads a checkpoint and runs the stages', () => {
  const dir = path.join(FIXTURES, 'hf_vit_small');
  const { model, labels } = vitkit.loadModel(dir);
  const ref = vitkit.readSafetensors(path.join(dir, 'ref.safetensors'));
  const pv = ref.f32('pixel_values');
  const { features } = model.forwardFeatures(new vitkit.Tensor(pv.shape, pv.data));
  const logits = model.forwardHead(features);
  assert.ok(maxAbsDiff(logits.data, ref.f32('logits').data) < 1e-4);
  assert.equal(labels.length, 5);
  for (const name of ['Trainer', 'AdamW', 'attentionRollout', 'preprocessBatch', 'saveCheckpoint', 'VisionTransformer']) {
    assert.equal(typeof (vitkit as Record<string, unknown>)[name], 'function', name);
  }
});
