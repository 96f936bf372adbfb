/**
 * One training-state reader for the four trainers (train/state.ts readTrainingState with RUN_STATE,
 * CLIP_STATE, MAE_STATE, DET_STATE): a state written by each real run, tampered with (a wrong type, a
 * value out of range, an unknown key, a missing key), is refused by the reader and by
 * `vitkit train --resume` (exit 1, one line naming the file and the field, expected vs received),
 * before the model is loaded: the tests delete the run's model file, and the refusal still names the
 * state's field, not the missing model. Untampered states resume bit for bit in loop.test.ts,
 * interrupt.test.ts, mae_cli.test.ts, detect/cli.test.ts and clip/cli.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, cpSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { VitkitError } from '../../src/errors.js';
import { readSafetensors, writeSafetensors, type StTensorIn } from '../../src/io/safetensors.js';
import { CLIP_STATE, DET_STATE, MAE_STATE, RUN_STATE, readTrainingState, type StateSpec } from '../../src/train/state.js';
import { FIXTURES, REFS, assertUserError, tmp, vitkit } from '../helpers.js';
import { CLIP_DIR, skipClip } from '../clip/common.js';

type Obj = Record<string, unknown>;

/** Rewrite `file` with its run edited (the checksum dropped, as a state from before checksums: so the field checks are what refuses it). */
function tamper(file: string, edit: (run: Obj) => void, meta: (m: Record<string, string>) => void = () => {}): void {
  const st = readSafetensors(file);
  const tensors: Record<string, StTensorIn> = {};
  for (const k of st.keys()) tensors[k] = { shape: st.entry(k).shape, data: st.f32(k).data };
  const m: Record<string, string> = { ...st.metadata };
  delete m['checksum'];
  const run = JSON.parse(m['run']!) as Obj;
  edit(run);
  m['run'] = JSON.stringify(run);
  meta(m);
  writeSafetensors(file, tensors, m, { overwrite: true });
}

const sub = (o: Obj, k: string) => o[k] as Obj;

interface Case { name: string; edit: (r: Obj) => void; meta?: (m: Record<string, string>) => void; re: RegExp }

/** the four kinds of tampering, for one state */
function cases(settingsInt: string): Case[] {
  return [
    { name: 'wrong type', edit: (r) => { sub(r, 'settings')[settingsInt] = '64'; }, re: new RegExp(`Expected an integer >= \\d+ for settings\\.${settingsInt} in .* but received the string "64"`) },
    { name: 'out of range', edit: (r) => { r['epoch'] = -1; }, re: /Expected an integer >= 0 for epoch in .* but received -1/ },
    { name: 'unknown key', edit: (r) => { sub(r, 'settings')['lrr'] = 1; }, re: /Expected only the fields .* in settings of .* but received the unknown field "settings\.lrr" \(1\)/ },
    { name: 'missing key', edit: (r) => { delete r['step']; }, re: /Expected an integer >= 0 for step in .* but received nothing \(the field is missing\)/ },
    { name: 'unknown metadata key', edit: () => {}, meta: (m) => { m['extra'] = 'x'; }, re: /Expected only the metadata keys .* in .* but received the unknown key "extra"/ },
  ];
}

/** every case refused by the reader and by `train --resume <run>` with the model file gone (exit 1, one line) */
function refusesAll(run: string, stateFile: string, spec: StateSpec, modelFile: string, list: Case[], resumeArgs: string[] = []): void {
  const good = readSafetensors(stateFile);
  const goodBytes = { tensors: Object.fromEntries(good.keys().map((k) => [k, { shape: good.entry(k).shape, data: good.f32(k).data }])) as Record<string, StTensorIn>, meta: { ...good.metadata } };
  readTrainingState(stateFile, spec); // the untampered state reads
  rmSync(path.join(run, modelFile));
  for (const c of list) {
    writeSafetensors(stateFile, goodBytes.tensors, goodBytes.meta, { overwrite: true });
    tamper(stateFile, c.edit, c.meta);
    assert.throws(() => readTrainingState(stateFile, spec), (e: unknown) => {
      assert.ok(e instanceof VitkitError, `${c.name}: ${String(e)}`);
      assert.match(e.message, c.re, c.name);
      assert.ok(e.message.includes(stateFile), `${c.name}: names the file`);
      return true;
    });
    const r = vitkit('train', '--resume', run, ...resumeArgs);
    assert.equal(r.code, 1, `${c.name}: exit ${r.code}\n${r.out}\n${r.err}`);
    assertUserError(r, c.re);
  }
}

test('classification: a tampered train_state.safetensors is refused field by field (reader and train --resume, exit 1)', () => {
  const dir = tmp();
  try {
    const data = path.join(dir, 'xy.safetensors');
    writeSafetensors(data, {
      x: { shape: [6, 1, 8, 8], data: Float32Array.from({ length: 6 * 64 }, (_, i) => Math.cos(i)) },
      y: { shape: [6], data: BigInt64Array.from({ length: 6 }, (_, i) => BigInt(i % 2)) },
    });
    const run = path.join(dir, 'run');
    const made = vitkit('train', '--model', 'vit_tiny_patch16_224', '--patch-size', '4', '--embed-dim', '8', '--depth', '1', '--num-heads', '2',
      '--data', data, '--epochs', '2', '--batch-size', '4', '--out', run, '--stop-after-steps', '1');
    assert.equal(made.code, 0, made.err);
    refusesAll(run, path.join(run, 'checkpoint', 'train_state.safetensors'), RUN_STATE, 'model.safetensors', [
      ...cases('batchSize'),
      { name: 'unknown history key', edit: (r) => { sub(r, 'partial')['x'] = 0; }, re: /unknown field "partial\.x"/ },
      { name: 'betas out of range', edit: (r) => { sub(r, 'settings')['betas'] = [0.9, 1]; }, re: /Expected a finite number in \[0, 1\) for settings\.betas\[1\] in .* but received 1/ },
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('MAE: a tampered mae_train_state.safetensors is refused field by field before the model is loaded', () => {
  const dir = tmp();
  try {
    const data = path.join(dir, 'x.safetensors');
    writeSafetensors(data, { x: { shape: [3, 3, 32, 32], data: Float32Array.from({ length: 3 * 3 * 32 * 32 }, (_, i) => Math.sin(i * 0.01)) } });
    const run = path.join(dir, 'run');
    const made = vitkit('train', '--task', 'mae', '--model', 'mae_vit_tiny_patch4', '--img-size', '32', '--patch-size', '8', '--in-chans', '3', '--batch-size', '2', '--epochs', '2',
      '--data', data, '--out', run, '--stop-after-steps', '1');
    assert.equal(made.code, 0, made.err);
    refusesAll(run, path.join(run, 'checkpoint', 'mae_train_state.safetensors'), MAE_STATE, 'model.safetensors', [
      ...cases('batchSize'),
      { name: 'mask ratio out of range', edit: (r) => { sub(r, 'settings')['maskRatio'] = 1; }, re: /Expected a finite number in \[0, 1\) for settings\.maskRatio in .* but received 1/ },
      { name: 'position past the epoch', edit: (r) => { r['batch'] = 5; }, re: /Expected the steps done of the epoch, 0 to 2 \(stepsPerEpoch 2\) for batch/ },
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('YOLOS: a tampered det_train_state.safetensors is refused field by field before the model is loaded; a state in the old metadata layout still reads', () => {
  const dir = tmp();
  try {
    const data = path.join(dir, 'det.safetensors');
    const tensors: Record<string, StTensorIn> = { x: { shape: [2, 3, 64, 64], data: Float32Array.from({ length: 2 * 3 * 64 * 64 }, (_, i) => Math.sin(i * 0.003)) } };
    for (const b of [0, 1]) {
      tensors[`targets.${b}.labels`] = { dtype: 'I64', shape: [1], data: BigInt64Array.from([BigInt(b + 1)]) };
      tensors[`targets.${b}.boxes`] = { shape: [1, 4], data: Float32Array.from([0.5, 0.5, 0.3, 0.4]) };
    }
    writeSafetensors(data, tensors);
    const run = path.join(dir, 'run');
    const made = vitkit('train', '--task', 'detect', '-m', path.join(FIXTURES, 'yolos_det'), '-d', data, '-o', run, '--epochs', '2', '--batch-size', '1', '--no-augment', '--stop-after-steps', '1');
    assert.equal(made.code, 0, made.err);
    const file = path.join(run, 'checkpoint', 'det_train_state.safetensors');
    // the layout YOLOS states had before this format: position in metadata strings, tensors params / exp_avg / exp_avg_sq
    const st = readSafetensors(file);
    const runJson = JSON.parse(st.metadata['run']!) as { epoch: number; position: number; steps: number; data: string };
    const legacy = path.join(dir, 'legacy.safetensors');
    const legacyMeta = { epoch: String(runJson.epoch), position: String(runJson.position), steps: String(runJson.steps), adam_step: st.metadata['optimizer_step']!, data: runJson.data };
    const legacyTensors = { params: { shape: st.entry('model').shape, data: st.f32('model').data }, exp_avg: { shape: st.entry('model').shape, data: st.f32('optimizer.exp_avg').data }, exp_avg_sq: { shape: st.entry('model').shape, data: st.f32('optimizer.exp_avg_sq').data } };
    writeSafetensors(legacy, legacyTensors, legacyMeta);
    const old = readTrainingState<{ epoch: number; position: number; steps: number }>(legacy, DET_STATE);
    assert.deepEqual([old.run.epoch, old.run.position, old.run.steps, old.optimizerStep], [0, 1, 1, 1]);
    assert.deepEqual(old.weights, st.f32('model').data);
    writeSafetensors(legacy, legacyTensors, { ...legacyMeta, position: '' }, { overwrite: true });
    assert.throws(() => readTrainingState(legacy, DET_STATE), /Expected an integer >= 0 for position in .*legacy\.safetensors but received NaN/);
    writeSafetensors(legacy, legacyTensors, { ...legacyMeta, steps: '1.5' }, { overwrite: true });
    assert.throws(() => readTrainingState(legacy, DET_STATE), /Expected an integer >= 0 for steps in .* but received 1\.5/);
    // an old run folder (that state at the top level, no checkpoint/) resumes as the new one does, bit for bit
    writeSafetensors(legacy, legacyTensors, legacyMeta, { overwrite: true });
    const oldRun = path.join(dir, 'old-run');
    cpSync(run, oldRun, { recursive: true });
    rmSync(path.join(oldRun, 'checkpoint'), { recursive: true });
    copyFileSync(legacy, path.join(oldRun, 'det_train_state.safetensors'));
    const before = readFileSync(path.join(run, 'model.safetensors'));
    for (const d of [run, oldRun]) {
      const r = vitkit('train', '--task', 'detect', '--resume', d, '-d', data, '--epochs', '2', '--batch-size', '1', '--no-augment');
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /resuming at epoch 1, image 1 of 2 \(1 steps done\)/);
    }
    assert.ok(!readFileSync(path.join(run, 'model.safetensors')).equals(before), 'the resume trained the run in its folder');
    assert.ok(readFileSync(path.join(run, 'model.safetensors')).equals(readFileSync(path.join(oldRun, 'model.safetensors'))), 'the old layout resumes as the new');
    assert.ok(!existsSync(path.join(oldRun, 'det_train_state.safetensors')) && existsSync(path.join(oldRun, 'checkpoint', 'det_train_state.safetensors')), 'its state moved');
    refusesAll(run, file, DET_STATE, 'model.safetensors', [
      { name: 'wrong type', edit: (r) => { r['position'] = '1'; }, re: /Expected an integer >= 0 for position in .* but received the string "1"/ },
      { name: 'out of range', edit: (r) => { r['epoch'] = 1.5; }, re: /Expected an integer >= 0 for epoch in .* but received 1\.5/ },
      { name: 'unknown key', edit: (r) => { r['lr'] = 1; }, re: /Expected only the fields format, epoch, position, steps, data in the run state of .* but received the unknown field "lr" \(1\)/ },
      { name: 'missing key', edit: (r) => { delete r['steps']; }, re: /Expected an integer >= 0 for steps in .* but received nothing \(the field is missing\)/ },
    ], ['--task', 'detect', '-d', data]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('CLIP: a tampered clip_train_state.safetensors is refused field by field before the model is loaded; the resume takes only checked fields', { skip: skipClip }, () => {
  const dir = tmp();
  try {
    const lines = [['astronaut', 'a photo of an astronaut'], ['chelsea', 'a photo of a cat'], ['coffee', 'a cup of coffee'], ['astronaut', 'an astronaut in a suit']]
      .map(([f, c]) => `${path.join(REFS, 'images', `${f}.png`)}\t${c}`);
    const data = path.join(dir, 'pairs.tsv');
    writeFileSync(data, lines.join('\n') + '\n');
    const run = path.join(dir, 'run');
    const made = vitkit('train', '--task', 'clip', '--model', CLIP_DIR, '--data', data, '--epochs', '2', '--batch-size', '2', '--lr', '1e-4', '--out', run, '--stop-after-steps', '1');
    assert.equal(made.code, 0, made.err);
    assert.ok(existsSync(path.join(run, 'open_clip_model.safetensors')));
    refusesAll(run, path.join(run, 'checkpoint', 'clip_train_state.safetensors'), CLIP_STATE, 'open_clip_model.safetensors', [
      ...cases('batchSize'),
      { name: 'a setting that is no option', edit: (r) => { sub(r, 'settings')['model'] = '/elsewhere'; }, re: /unknown field "settings\.model" \(the string "\/elsewhere"\)/ },
      { name: 'lr not finite', edit: (r) => { sub(r, 'settings')['lr'] = 'Infinity'; }, re: /Expected a finite number in \[0, Infinity\] for settings\.lr in .* but received the string "Infinity"/ },
      { name: 'a lock that is no boolean', edit: (r) => { sub(r, 'settings')['lockImage'] = 1; }, re: /Expected true or false for settings\.lockImage in .* but received 1/ },
      { name: 'batch past the epoch', edit: (r) => { r['epoch'] = 2; r['batch'] = 1; }, re: /Expected 0 once every epoch is done for batch/ },
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
