/** vitkit train --teacher: DeiT hard distillation from the command line, with its checks. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { mkdirSync } from 'node:fs';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { initWeights, loadModel, saveCheckpoint } from '../../src/checkpoint/checkpoint.js';
import { resolveConfig } from '../../src/models/config.js';
import { VisionTransformer } from '../../src/models/vit.js';
import { Tensor } from '../../src/tensor.js';
import { assertUserError, tmp, vitkit } from '../helpers.js';

const dir = tmp();
const N = 12;
const x = new Float32Array(N * 3 * 16 * 16); // (N, 3, 16, 16)
for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.37) + Math.cos(i * 0.011 * (1 + (Math.floor(i / 768) % 3)));
const DATA = path.join(dir, 'data.safetensors');
{
  const y = new BigInt64Array(N);
  for (let i = 0; i < N; i++) y[i] = BigInt(i % 3);
  writeSafetensors(DATA, { x: { shape: [N, 3, 16, 16], data: x }, y: { shape: [N], data: y } });
}
function teacherCkpt(name: string, numClasses: number, imgSize = 16): string {
  const d = path.join(dir, name);
  mkdirSync(d);
  const m = new VisionTransformer(resolveConfig({ img_size: imgSize, patch_size: 8, in_chans: 3, num_classes: numClasses, embed_dim: 16, depth: 1, num_heads: 2 }));
  initWeights(m, 21);
  saveCheckpoint(d, m, { name: 'vit_custom', pretrainedCfg: {} });
  return d;
}
const TEACHER = teacherCkpt('teacher', 3);
const ARCH = ['--img-size', '16', '--patch-size', '8', '--embed-dim', '16', '--depth', '1', '--num-heads', '2', '--num-classes', '3'];
const COMMON = ['--data', DATA, '--batch-size', '4', '--workers', '0', '--no-augment', '--seed', '3'];

test('--teacher with a student that is not distilled: exit 2, one line', () => {
  const r = vitkit('train', '--model', 'vit_tiny_patch16_224', ...ARCH, ...COMMON, '--teacher', TEACHER, '--epochs', '1', '--out', path.join(dir, 'o1'));
  assertUserError(r, /--teacher needs a distilled student/);
  assert.equal(r.code, 2);
});

test('--teacher with other classes or another fixed image size is refused clearly', () => {
  const r = vitkit('train', '--model', 'deit_tiny_distilled_patch16_224', ...ARCH, ...COMMON, '--teacher', teacherCkpt('t5', 5), '--epochs', '1', '--out', path.join(dir, 'o2'));
  assertUserError(r, /Expected the teacher .*t5 to have the student's 3 classes but it has 5/);
  const s = vitkit('train', '--model', 'deit_tiny_distilled_patch16_224', ...ARCH, ...COMMON, '--teacher', teacherCkpt('t32', 3, 32), '--epochs', '1', '--out', path.join(dir, 'o3'));
  assertUserError(s, /Expected the teacher .*t32 to take the student's 16x16 images .* but it takes 32x32 and has no dynamic_img_size/);
});

test('vitkit train --teacher: the distillation head learns the teacher\'s argmax', () => {
  const out = path.join(dir, 'run');
  const r = vitkit('train', '--model', 'deit_tiny_distilled_patch16_224', ...ARCH, ...COMMON, '--teacher', TEACHER, '--epochs', '8', '--lr', '3e-3', '--warmup-epochs', '0', '--out', out);
  assert.equal(r.code, 0, r.err);
  const teacher = loadModel(TEACHER).model, student = loadModel(out).model;
  const px = new Tensor([N, 3, 16, 16], x);
  const argmax = (d: Float32Array, i: number) => { let b = 0; for (let k = 1; k < 3; k++) if (d[i * 3 + k]! > d[i * 3 + b]!) b = k; return b; };
  const t = teacher.forward(px).data; // (N, 3)
  const h = student.forwardHeads(student.forwardFeatures(px).features);
  const dist = h.distLogits!.data, cls = h.clsLogits!.data; // (N, 3) each
  let agreeDist = 0, agreeClsLabel = 0;
  for (let i = 0; i < N; i++) { if (argmax(dist, i) === argmax(t, i)) agreeDist++; if (argmax(cls, i) === i % 3) agreeClsLabel++; }
  const teacherMatchesLabels = [...Array(N).keys()].filter((i) => argmax(t, i) === i % 3).length;
  assert.ok(teacherMatchesLabels < N, 'the teacher must disagree with some labels for the test to tell the heads apart');
  assert.ok(agreeDist >= N - 2, `dist head agrees with the teacher on ${agreeDist} of ${N}`);
  assert.ok(agreeDist > teacherMatchesLabels || agreeClsLabel > teacherMatchesLabels, `dist ${agreeDist}, cls-vs-labels ${agreeClsLabel}, teacher-vs-labels ${teacherMatchesLabels}`);
});
