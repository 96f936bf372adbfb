/**
 * detTokenMaps: det token k's rollout row and last-block head rows over the patches, checked
 * against a rollout written out here from hustvl/YOLOS's reference attention (last block, the
 * ref file's `last_attention`) and the model's own attentions: per block mean over heads,
 * A = (A + I) / 2 rows renormalised, R = A_L ··· A_1 (the refs README's rollout).
 * `vitkit explain --det-token k` on image files: its maps are the reference forward's last-block
 * attention row of det token k (chelsea and coffee fill the reference batch's 64x96, so their rows
 * of `last_attention` are each image alone), its box YOLOS PostProcess's (`single.{i}.*`), the PNGs
 * overlays of the file's size, and the bad-input lines.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { FIXTURES, REFS, cliInProcess, maxAbsDiff, needRefs, tmp, withoutDeviceLine } from '../helpers.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { Tensor } from '../../src/tensor.js';
import { loadImage } from '../../src/io/image.js';
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

test('vitkit explain --det-token k: the last block\'s det-token attention row of the reference forward, the token\'s box, overlays', async (t) => {
  const IMAGES = ['chelsea', 'coffee'].map((n) => path.join(REFS, 'images', `${n}.png`));
  if (!needRefs(t, ...IMAGES)) return;
  const DIR = path.join(FIXTURES, 'yolos_det');
  const ref = readSafetensors(path.join(DIR, 'ref.safetensors'));
  const last = ref.f32('last_attention').data; // (3, 4, 35, 35): astronaut, chelsea, coffee
  const N = 35, NH = 4, NP = 24, size = ['--shortest-edge', '64', '--longest-edge', '112'];
  for (const k of [0, 7]) {
    const r = await cliInProcess(['explain', '-m', DIR, '--det-token', String(k), ...size, '--json', ...IMAGES]);
    assert.equal(r.code, 0, r.err);
    const res = JSON.parse(r.out) as { image: string; det_token: number; grid: number[]; attention: number[][]; heads: number[][][]; detection: { label_id: number; score: number; box: number[] } }[];
    assert.equal(res.length, 2);
    res.forEach((e, i) => {
      const b = i + 1, row = 1 + NP + k;
      assert.equal(e.image, IMAGES[i]);
      assert.equal(e.det_token, k);
      assert.deepEqual(e.grid, [4, 6]);
      let eh = 0, em = 0;
      for (let p = 0; p < NP; p++) {
        let mean = 0;
        for (let h = 0; h < NH; h++) {
          const want = last[((b * NH + h) * N + row) * N + 1 + p]!;
          mean += want / NH;
          eh = Math.max(eh, Math.abs(e.heads[h]![Math.floor(p / 6)]![p % 6]! - want));
        }
        em = Math.max(em, Math.abs(e.attention[Math.floor(p / 6)]![p % 6]! - mean));
      }
      assert.ok(eh <= 1e-5 && em <= 1e-5, `image ${b}, det token ${k}: heads ${eh}, fused ${em} vs last_attention`);
      assert.equal(e.detection.label_id, Number(ref.i64(`single.${b}.labels`).data[k]));
      assert.ok(Math.abs(e.detection.score - ref.f32(`single.${b}.scores`).data[k]!) <= 1e-4, `score ${e.detection.score}`);
      const wantBox = ref.f32(`single.${b}.boxes`).data.subarray(4 * k, 4 * k + 4);
      assert.ok(maxAbsDiff(Float32Array.from(e.detection.box), wantBox) <= 1e-2, `box ${e.detection.box} vs ${Array.from(wantBox)}`);
    });
  }
  // --head-fusion max: the element-wise max of the reference heads
  const mx = await cliInProcess(['explain', '-m', DIR, '--det-token', '2', '--head-fusion', 'max', ...size, '--json', IMAGES[0]!]);
  assert.equal(mx.code, 0, mx.err);
  const m0 = (JSON.parse(mx.out) as { attention: number[][] }[])[0]!.attention.flat();
  let emx = 0;
  for (let p = 0; p < NP; p++) {
    let want = -Infinity;
    for (let h = 0; h < NH; h++) want = Math.max(want, last[((1 * NH + h) * N + 1 + NP + 2) * N + 1 + p]!);
    emx = Math.max(emx, Math.abs(m0[p]! - want));
  }
  assert.ok(emx <= 1e-5, `max fusion ${emx}`);
  // the pictures: the file's size, the overlay drawn, refused the second time without --overwrite
  const out = path.join(tmp(), 'maps');
  const w = await cliInProcess(['explain', '-m', DIR, '--det-token', '3', ...size, '--out', out, IMAGES[1]!]);
  assert.equal(w.code, 0, w.err);
  assert.match(w.out, /det token 3 predicts .* hottest patch row \d col \d of 4x6/);
  const orig = await loadImage(IMAGES[1]!, 3);
  for (const f of ['coffee.det3.png', 'coffee.det3.heads.png']) assert.ok(existsSync(path.join(out, f)), f);
  const map = await loadImage(path.join(out, 'coffee.det3.png'), 3);
  assert.deepEqual([map.width, map.height], [orig.width, orig.height]);
  assert.notDeepEqual(map.data, orig.data);
  const again = await cliInProcess(['explain', '-m', DIR, '--det-token', '3', ...size, '--out', out, IMAGES[1]!]);
  assert.equal(again.code, 1);
  assert.match(again.err, /coffee\.det3\.png already exists; pass --overwrite/);
  // bad input
  const cases: [string[], number, RegExp][] = [
    [['--det-token', '10'], 1, /Expected --det-token in 0\.\.9 \(.*has 10 det tokens\) but received 10/],
    [[], 1, /is a YOLOS detector: pass --det-token k/],
    [['--det-token', '1', '--text', 'a cat'], 2, /--det-token maps the last block's attention .*--text does not apply/],
    [['--det-token', '1', '--method', 'grad-rollout'], 2, /--method does not apply/],
    [['--det-token', '-1'], 2, /--det-token/],
    [['--det-token', '1', '--device', 'webgpu'], 1, /--device cpu only for now/],
  ];
  for (const [extra, code, re] of cases) {
    const r = await cliInProcess(['explain', '-m', DIR, ...size, '--json', ...extra, IMAGES[0]!]);
    assert.equal(r.code, code, `${extra.join(' ')}: ${r.err}`);
    assert.match(r.err, re);
    assert.equal(withoutDeviceLine(r.err).trim().split('\n').length, 1, r.err);
  }
  const notYolos = await cliInProcess(['explain', '-m', path.join(FIXTURES, 'hf_vit_small'), '--det-token', '0', '--json', IMAGES[0]!]);
  assert.equal(notYolos.code, 1);
  assert.match(notYolos.err, /--det-token explains a det token of a YOLOS detector, but .*hf_vit_small is not one/);
  const sizeAlone = await cliInProcess(['explain', '-m', path.join(FIXTURES, 'hf_vit_small'), '--shortest-edge', '64', '--json', IMAGES[0]!]);
  assert.equal(sizeAlone.code, 2);
  assert.match(sizeAlone.err, /pass them with --det-token/);
});
