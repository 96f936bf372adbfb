/** `vitkit embed` and `vitkit explain` on the DINOv2-reg (registers, num_classes 0) and SigLIP (MAP head, no class token) references. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readSafetensors } from '../../src/io/safetensors.js';
import { REFS, needRefs, maxAbsDiff, tmp, vitkit } from '../helpers.js';

const IMAGES = ['astronaut.png', 'chelsea.png'].map((f) => path.join(REFS, 'images', f));
const CASES = [
  { fam: 'timm_dinov2_reg', grid: [4, 4], token: 'cls' },
  { fam: 'timm_siglip', grid: [4, 4], token: 'mean' },
] as const;

for (const { fam, grid, token } of CASES) {
  test(`vitkit embed on ${fam}: the embeddings are timm's pre_logits of the reference images within 1e-5`, (t) => {
    const dir = path.join(REFS, fam);
    if (!needRefs(t, dir, ...IMAGES)) return;
    const out = path.join(tmp(), 'e.safetensors');
    const r = vitkit('embed', '-m', dir, ...IMAGES, '--out', out);
    assert.equal(r.code, 0, r.err);
    const e = readSafetensors(out).f32('embeddings');
    const ref = readSafetensors(path.join(dir, 'ref.safetensors')).f32('pre_logits');
    assert.deepEqual(e.shape, ref.shape);
    const err = maxAbsDiff(e.data, ref.data);
    t.diagnostic(`${fam}: embed vs pre_logits max abs diff ${err.toExponential(3)}`);
    assert.ok(err <= 1e-5, `${fam}: ${err}`);
  });

  test(`vitkit explain on ${fam}: the map's grid is the model's patch grid ${grid.join('x')}, the pooling token is named (${token})`, (t) => {
    const dir = path.join(REFS, fam);
    if (!needRefs(t, dir, ...IMAGES)) return;
    const r = vitkit('explain', '-m', dir, IMAGES[1]!, '--json');
    assert.equal(r.code, 0, r.err);
    const [e] = JSON.parse(r.out) as { grid: number[]; token: string; note?: string; rollout: number[][] }[];
    assert.deepEqual(e!.grid, [...grid]);
    assert.equal(e!.rollout.length, grid[0]);
    assert.ok(e!.rollout.every((row) => row.length === grid[1] && row.every((v) => Number.isFinite(v) && v >= 0)));
    assert.equal(e!.token, token);
    if (token === 'mean') assert.match(e!.note ?? '', /no class token/);
  });
}
