import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { REFS as REFS_DIR, needRefs } from '../helpers.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { resampleAbsPosEmbed, sincos2dPosEmbed } from '../../src/models/pos_embed.js';

const ROOT = new URL('../../../', import.meta.url);
const REFS = REFS_DIR + '/';
const FIX = fileURLToPath(new URL('test/fixtures/pos_embed/', ROOT));

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

for (const n of [10, 20]) {
  test(`resampleAbsPosEmbed 14x14 -> ${n}x${n} matches timm (full 192-dim reference)`, (t) => {
    if (!needRefs(t)) return;
    const st = readSafetensors(REFS + `timm_vit_tiny_posembed_${n}.safetensors`);
    const pe = st.f32('pos_embed');
    const ref = st.f32('resampled');
    assert.deepEqual(pe.shape, [1, 197, 192]);
    assert.deepEqual(ref.shape, [1, 1 + n * n, 192]);
    const out = resampleAbsPosEmbed(pe.data, 192, [14, 14], [n, n], 1);
    const d = maxDiff(out, ref.data);
    t.diagnostic(`${n}x${n}: max abs diff ${d.toExponential(3)}`);
    assert.ok(d <= 1e-5, `${d}`);
  });
}

test('resampleAbsPosEmbed matches timm on the bundled 16-channel reference', (t) => {
  const st = readSafetensors(FIX + 'timm_vit_tiny_posembed_d16.safetensors');
  const pe = st.f32('pos_embed');
  for (const n of [10, 20]) {
    const ref = st.f32(`resampled_${n}`);
    const out = resampleAbsPosEmbed(pe.data, 16, [14, 14], [n, n], 1);
    const d = maxDiff(out, ref.data);
    t.diagnostic(`fixture ${n}x${n}: max abs diff ${d.toExponential(3)}`);
    assert.ok(d <= 1e-5, `${n}: ${d}`);
  }
});

test('resampleAbsPosEmbed: prefix rows kept, identity copies, constants preserved, non-square grids', () => {
  const D = 3;
  const pe = new Float32Array((2 + 4 * 6) * D);
  for (let i = 0; i < 2 * D; i++) pe[i] = 100 + i;
  for (let t = 0; t < 24; t++) for (let d = 0; d < D; d++) pe[(2 + t) * D + d] = d - 1; // constant per channel
  const out = resampleAbsPosEmbed(pe, D, [4, 6], [7, 3], 2);
  assert.equal(out.length, (2 + 21) * D);
  assert.deepEqual([...out.subarray(0, 6)], [100, 101, 102, 103, 104, 105]);
  for (let t = 0; t < 21; t++) for (let d = 0; d < D; d++) assert.ok(Math.abs(out[(2 + t) * D + d] - (d - 1)) < 1e-6);
  const same = resampleAbsPosEmbed(pe, D, [4, 6], [4, 6], 2);
  assert.deepEqual(same, pe);
  assert.notEqual(same, pe);
  assert.throws(() => resampleAbsPosEmbed(pe, D, [5, 5], [7, 7], 2), /Expected \(1, 27, 3\) = 81 values for a 5x5 grid with 2 prefix tokens for pos_embed but received 78/);
  assert.throws(() => resampleAbsPosEmbed(pe, D, [4, 6], [0, 3], 2), /new pos_embed grid/);
});

test('sincos2dPosEmbed: MAE layout (first half encodes the column, second the row)', () => {
  const D = 8;
  const e = sincos2dPosEmbed(3, 5, D);
  assert.equal(e.length, 15 * D);
  const omega = [1, 1 / 10000 ** 0.5]; // D / 4 = 2 bands: 10000^(-0/2), 10000^(-1/2)
  for (let y = 0; y < 3; y++) {
    for (let x = 0; x < 5; x++) {
      const row = e.subarray((y * 5 + x) * D, (y * 5 + x + 1) * D);
      const want = [
        ...omega.map((w) => Math.sin(x * w)),
        ...omega.map((w) => Math.cos(x * w)),
        ...omega.map((w) => Math.sin(y * w)),
        ...omega.map((w) => Math.cos(y * w)),
      ];
      for (let i = 0; i < D; i++) assert.ok(Math.abs(row[i] - want[i]) < 1e-7, `(${y},${x})[${i}]`);
    }
  }
  // token 0 is (sin 0, cos 0) = (0, 1) blocks
  assert.deepEqual([...e.subarray(0, D)], [0, 0, 1, 1, 0, 0, 1, 1]);
  // D = 16: 4 bands per block, omega_k = 10000^(-k/4) = 1, 1/10, 1/100, 1/1000 (hand-computed), at (y, x) = (2, 3)
  const e16 = sincos2dPosEmbed(3, 5, 16);
  const at = e16.subarray((2 * 5 + 3) * 16, (2 * 5 + 4) * 16);
  const want16 = [
    ...[1, 0.1, 0.01, 0.001].map((w) => Math.sin(3 * w)), ...[1, 0.1, 0.01, 0.001].map((w) => Math.cos(3 * w)),
    ...[1, 0.1, 0.01, 0.001].map((w) => Math.sin(2 * w)), ...[1, 0.1, 0.01, 0.001].map((w) => Math.cos(2 * w)),
  ];
  for (let i = 0; i < 16; i++) assert.ok(Math.abs(at[i] - want16[i]) < 1e-7, `D=16 (2,3)[${i}]: ${at[i]} vs ${want16[i]}`);
  // a different temperature changes only the higher bands
  const t2 = sincos2dPosEmbed(3, 5, D, 100);
  assert.ok(Math.abs(t2[1 * D + 1] - Math.sin(1 / 10)) < 1e-7);
  assert.throws(() => sincos2dPosEmbed(3, 5, 6), /Expected a positive multiple of 4 for the sin-cos embedding dim but received 6/);
});
