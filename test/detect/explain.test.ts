/**
 * detTokenMaps: det token k's rollout row and last-block head rows over the patches, checked
 * against a rollout written out here from hustvl/YOLOS's reference attention (last block, the
 * ref file's `last_attention`) and the model's own attentions: per block mean over heads,
 * A = (A + I) / 2 rows renormalised, R = A_L ··· A_1 (the refs README's rollout).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { FIXTURES, maxAbsDiff } from '../helpers.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { Tensor } from '../../src/tensor.js';
import { loadYolos } from '../../src/detect/load.js';
import { detTokenMaps } from '../../src/detect/explain.js';

test('detTokenMaps: det-token rows of the rollout and of the last block\'s attention', () => {
  const DIR = path.join(FIXTURES, 'yolos_det');
  const ref = readSafetensors(path.join(DIR, 'ref.safetensors'));
  const pv = ref.f32('pixel_values');
  const x = new Tensor(pv.shape, pv.data);
  const { model } = loadYolos(DIR);
  const maps = detTokenMaps(model, x);
  assert.deepEqual(maps.grid, [4, 6]);
  const N = 35, NH = 4, NP = 24, last = ref.f32('last_attention').data;
  // the last block's head rows = the reference attention
  let eH = 0;
  for (let b = 0; b < 3; b++) for (let k = 0; k < 10; k++) for (let h = 0; h < NH; h++) {
    const row = 1 + NP + k;
    const want = last.subarray(((b * NH + h) * N + row) * N + 1, ((b * NH + h) * N + row) * N + 1 + NP);
    eH = Math.max(eH, maxAbsDiff(maps.heads[b]![k]![h]!, want));
  }
  assert.ok(eH <= 1e-5, `head maps vs last_attention: ${eH}`);
  // rollout, written out from the model's attentions
  const attn = model.forward(x, { attentions: true }).attentions!;
  let eR = 0;
  for (let b = 0; b < 3; b++) {
    let R: Float64Array | null = null;
    for (const a of attn) {
      const A = new Float64Array(N * N);
      for (let i = 0; i < N; i++) {
        let s = 0;
        for (let j = 0; j < N; j++) {
          let m = 0;
          for (let h = 0; h < NH; h++) m += a.data[((b * NH + h) * N + i) * N + j]! / NH;
          A[i * N + j] = (m + (i === j ? 1 : 0)) / 2;
          s += A[i * N + j]!;
        }
        for (let j = 0; j < N; j++) A[i * N + j]! /= s;
      }
      if (!R) R = A;
      else {
        const C = new Float64Array(N * N);
        for (let i = 0; i < N; i++) for (let k = 0; k < N; k++) for (let j = 0; j < N; j++) C[i * N + j]! += A[i * N + k]! * R[k * N + j]!;
        R = C;
      }
    }
    for (let k = 0; k < 10; k++) {
      const row = 1 + NP + k;
      eR = Math.max(eR, maxAbsDiff(maps.rollout[b]![k]!, R!.subarray(row * N + 1, row * N + 1 + NP)));
    }
  }
  assert.ok(eR <= 1e-6, `rollout rows: ${eR}`);
});
