/**
 * The run folder `vitkit train --out run/` writes is a timm checkpoint folder as it is: timm 1.0.28's
 * `timm.create_model('local-dir:run', pretrained=True)` loads it (timm refuses a folder with two
 * top-level .safetensors files, which is where the training state used to be) and its logits equal
 * vitkit's on a fixed input within 1e-4 absolute (../shared/refs/README.md: forward logits of a correct
 * fp32 implementation). Same for the EMA folder `run/ema/`. A copy of the folder in the old layout (the
 * state at the top level) is loaded too, and must fail: the check sees the difference.
 *
 * Needs VITKIT_TIMM_PYTHONPATH (a PYTHONPATH for /usr/bin/python3, which must have torch, holding timm
 * 1.0.28, safetensors and huggingface_hub); without it the test skips with one line saying so. It
 * skips under CI=true too: CI's machine has no torch (the project's registries are npm and Debian,
 * and CI installs no Python packages), so this interop check is run by hand (README, CHANGELOG).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, cpSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { writeSafetensors, readSafetensors } from '../../src/io/safetensors.js';
import { loadModel } from '../../src/checkpoint/checkpoint.js';
import { Tensor } from '../../src/tensor.js';
import { IN_CI, ROOT, maxAbsDiff, tmp, vitkit } from '../helpers.js';

const PYTHONPATH = process.env['VITKIT_TIMM_PYTHONPATH'];
const PYTHON = '/usr/bin/python3';
const HOW = 'pip install --target DIR/st safetensors huggingface_hub pyyaml; git archive v1.0.28 timm (pytorch-image-models) | tar -x -C DIR/timm; VITKIT_TIMM_PYTHONPATH=DIR/timm:DIR/st';
const skip = IN_CI
  ? 'CI has no torch: the timm interop check runs by hand with VITKIT_TIMM_PYTHONPATH'
  : PYTHONPATH ? false : `needs VITKIT_TIMM_PYTHONPATH (timm 1.0.28 + safetensors + huggingface_hub for ${PYTHON} with torch): ${HOW}`;

/** forward logits: ../shared/refs/README.md's tolerance for a correct fp32 implementation */
const TOL = 1e-4;

test('timm 1.0.28 loads the run folder as written (local-dir:, pretrained=True) and its logits equal vitkit\'s; the EMA folder too', { skip }, (t) => {
  const dir = tmp();
  try {
    const N = 8;
    const x = new Float32Array(N * 3 * 16 * 16); // (N, 3, 16, 16)
    for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.013);
    const y = new BigInt64Array(N);
    for (let i = 0; i < N; i++) y[i] = BigInt(i % 3);
    const data = path.join(dir, 'xy.safetensors');
    writeSafetensors(data, { x: { shape: [N, 3, 16, 16], data: x }, y: { shape: [N], data: y } });
    // 8 samples, batch 4: one epoch of 2 steps, through the command line as a user runs it
    const run = path.join(dir, 'run');
    const r = vitkit('train', '--model', 'vit_tiny_patch16_224', '--img-size', '16', '--patch-size', '8', '--embed-dim', '16', '--depth', '1', '--num-heads', '2',
      '--data', data, '--epochs', '1', '--batch-size', '4', '--lr', '1e-2', '--warmup-epochs', '0', '--ema-decay', '0.5', '--out', run);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(readdirSync(run).filter((f) => f.endsWith('.safetensors')), ['model.safetensors']);
    assert.ok(existsSync(path.join(run, 'checkpoint', 'train_state.safetensors')));
    // the old layout, as a control: the state beside model.safetensors
    const legacy = path.join(dir, 'legacy');
    cpSync(run, legacy, { recursive: true });
    copyFileSync(path.join(run, 'checkpoint', 'train_state.safetensors'), path.join(legacy, 'train_state.safetensors'));

    // a fixed input, not the training data
    const B = 2;
    const input = new Float32Array(B * 3 * 16 * 16); // (B, 3, 16, 16)
    for (let i = 0; i < input.length; i++) input[i] = Math.cos(i * 0.071) * 1.7;
    const xFile = path.join(dir, 'x.safetensors'), outFile = path.join(dir, 'timm_logits.safetensors');
    writeSafetensors(xFile, { x: { shape: [B, 3, 16, 16], data: input } });
    const py = spawnSync(PYTHON, [path.join(ROOT, 'test', 'train', 'run_folder_timm.py'), xFile, outFile, run, path.join(run, 'ema'), legacy],
      { encoding: 'utf8', env: { ...process.env, PYTHONPATH: PYTHONPATH!, HF_HUB_OFFLINE: '1' }, timeout: 300_000 });
    assert.equal(py.status, 0, `${PYTHON} failed:\n${py.stderr}`);
    const lines = py.stdout.trim().split('\n').map((l) => JSON.parse(l) as { dir: string; ok: boolean; error: string | null; warnings: string[] });
    assert.equal(lines.length, 3, py.stdout);
    const timm = readSafetensors(outFile);
    for (const [i, folder] of [[0, run], [1, path.join(run, 'ema')]] as const) {
      const l = lines[i]!;
      assert.ok(l.ok, `timm could not load ${folder}: ${l.error}`);
      assert.deepEqual(l.warnings.filter((w) => /Multiple|checkpoint/i.test(w)), [], `timm warned on ${folder}`);
      const ours = loadModel(folder).model.forward(new Tensor([B, 3, 16, 16], input)); // (B, 3)
      const theirs = timm.f32(`logits.${i}`);
      assert.deepEqual(theirs.shape, [B, 3]);
      const d = maxAbsDiff(ours.data, theirs.data);
      assert.ok(d <= TOL, `${folder}: timm's logits differ from vitkit's by ${d} (> ${TOL})`);
      t.diagnostic(`${path.basename(folder)}: max |timm - vitkit| logits ${d.toExponential(2)}`);
    }
    // the model and its EMA differ (two steps at lr 1e-2, EMA decay 0.5): each folder was loaded, not one twice
    assert.ok(maxAbsDiff(timm.f32('logits.0').data, timm.f32('logits.1').data) > 1e-4);
    const old = lines[2]!;
    assert.equal(old.ok, false, 'timm loaded a folder with two top-level .safetensors files: the control no longer shows the difference');
    assert.match(old.error ?? '', /NameError/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
