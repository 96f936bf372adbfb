/**
 * Multi-frame DICOM files in every command that takes images, and --window / --frame reaching the
 * worker threads (data loader and inference workers).
 *
 * The multi-frame file is built here from MR_small.dcm (explicit VR little endian, 64 x 64 signed
 * 16-bit, window 600/1600 in the file): its header with Number of Frames (0028,0008) inserted and three
 * frames as the pixel data: pydicom's stored values of MR_small, the same flipped left-right, and
 * flipped top-bottom. The expected windowed frames are pydicom's `MR_small.window01` (ref.safetensors)
 * flipped the same way, so no expected value comes from vitkit. (pydicom 2.3.1 reads the built file
 * as 3 frames equal to these, checked by hand when this test was written.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdirSync, copyFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { FIXTURES, tmp, vitkit, assertUserError, maxAbsDiff } from '../helpers.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { decodeDicom, dicomFrameCount } from '../../src/io/dicom.js';
import { expandFrames, frameRef, parseFrameRef, setMedicalDefaults } from '../../src/io/medical.js';
import { preprocessImage } from '../../src/io/preprocess.js';
import { presetConfig } from '../../src/models/presets.js';
import { createModel } from '../../src/models/registry.js';
import { initWeights, saveCheckpoint, loadModel } from '../../src/checkpoint/checkpoint.js';
import { embedPixels } from '../../src/embed/embed.js';
import { Tensor } from '../../src/tensor.js';
import { CLIP_DIR, skipClip } from '../clip/common.js';

const DIR = path.join(FIXTURES, 'dicom');
const ref = readSafetensors(path.join(DIR, 'ref.safetensors'));
const S = 64;

type Flip = 'none' | 'lr' | 'tb';
const FLIPS: Flip[] = ['none', 'lr', 'tb'];
/** x (S, S) flipped */
function flip<T extends ArrayLike<number>>(x: T, how: Flip): number[] {
  const out: number[] = new Array(S * S);
  for (let y = 0; y < S; y++) for (let c = 0; c < S; c++) {
    const sy = how === 'tb' ? S - 1 - y : y;
    const sc = how === 'lr' ? S - 1 - c : c;
    out[y * S + c] = Number(x[sy * S + sc]!);
  }
  return out;
}

const stored = Array.from(ref.i64('MR_small.stored').data, (v) => Number(v)); // (64, 64)
const window01 = ref.f32('MR_small.window01').data; // (64, 64)

/** MR_small.dcm's header + Number of Frames + these frames (each (64, 64) stored values) as OW pixel data. */
function dicomOf(frames: number[][]): Buffer {
  const src = readFileSync(path.join(DIR, 'MR_small.dcm'));
  const pi = src.indexOf(Buffer.from([0x28, 0x00, 0x04, 0x00, 0x43, 0x53])); // (0028,0004) CS Photometric Interpretation
  assert.ok(pi > 132);
  const piEnd = pi + 8 + src.readUInt16LE(pi + 6);
  const px = src.lastIndexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x57])); // (7FE0,0010) OW
  assert.equal(src.readUInt32LE(px + 8), S * S * 2);
  const n = Buffer.from(`${frames.length} `.slice(0, 2)); // IS, even length
  const nof = Buffer.concat([Buffer.from([0x28, 0x00, 0x08, 0x00, 0x49, 0x53, 0x02, 0x00]), n]);
  const pxHead = Buffer.from(src.subarray(px, px + 12));
  pxHead.writeUInt32LE(frames.length * S * S * 2, 8);
  const data = Buffer.alloc(frames.length * S * S * 2); // (F, 64, 64) int16 little endian
  frames.forEach((f, k) => f.forEach((v, i) => data.writeInt16LE(v, (k * S * S + i) * 2)));
  return Buffer.concat([src.subarray(0, piEnd), nof, src.subarray(piEnd, px), pxHead, data]);
}

const MULTI = dicomOf(FLIPS.map((f) => flip(stored, f)));

function identityModel(size: number, channels = 1): string {
  const dir = path.join(tmp(), 'm');
  const config = { ...presetConfig('vit_tiny_patch16_224'), img_size: size, in_chans: channels, embed_dim: 16, depth: 1, num_heads: 2, num_classes: 2 };
  const model = createModel(config);
  initWeights(model, 0);
  const m = Array(channels).fill(0), s = Array(channels).fill(1);
  saveCheckpoint(dir, model, { name: 'vit_tiny_patch16_224', pretrainedCfg: { input_size: [channels, size, size], mean: m, std: s, crop_pct: 1, crop_mode: 'center', interpolation: 'bicubic', num_classes: 2 } });
  return dir;
}

/** a folder with multi.dcm (3 frames) and one single-frame file per flip */
function folder(): { dir: string; multi: string; single: Record<Flip, string> } {
  const dir = tmp();
  const multi = path.join(dir, 'multi.dcm');
  writeFileSync(multi, MULTI);
  const single = {} as Record<Flip, string>;
  const sdir = tmp();
  for (const f of FLIPS) {
    single[f] = path.join(sdir, `single_${f}.dcm`);
    writeFileSync(single[f], dicomOf([flip(stored, f)]));
  }
  return { dir, multi, single };
}

test('the built multi-frame file decodes to 3 frames of the reference stored values; frame references parse', () => {
  const d = decodeDicom(MULTI, 'multi.dcm');
  assert.equal(d.frames, 3);
  assert.equal(dicomFrameCount(MULTI, 'multi.dcm'), 3);
  assert.equal(dicomFrameCount(readFileSync(path.join(DIR, 'MR_small.dcm')), 'MR_small.dcm'), 1);
  FLIPS.forEach((f, k) => assert.deepEqual(Array.from(d.stored.subarray(k * S * S, (k + 1) * S * S)), flip(stored, f), `frame ${k}`));
  assert.equal(frameRef('a/b.dcm', 2), 'a/b.dcm#frame=2');
  assert.deepEqual(parseFrameRef('/nonexistent/b.dcm#frame=12'), { file: '/nonexistent/b.dcm', frame: 12 });
  assert.deepEqual(parseFrameRef('/nonexistent/b.dcm#frame=01'), { file: '/nonexistent/b.dcm#frame=01' });
  const real = path.join(tmp(), 'odd#frame=1'); // a real file of that name is that file
  writeFileSync(real, 'x');
  assert.deepEqual(parseFrameRef(real), { file: real });
  const { multi } = folder();
  const png = path.join(DIR, 'ct_small_u16.png');
  assert.deepEqual(expandFrames([png, multi], {}), [png, `${multi}#frame=0`, `${multi}#frame=1`, `${multi}#frame=2`]);
  assert.deepEqual(expandFrames([png, multi], { frame: 2 }), [png, `${multi}#frame=2`]);
  assert.throws(() => expandFrames([multi], { frame: 3 }), /frame in 0\.\.2.*multi\.dcm.*3 frames.*received 3/);
  // 12 frames (98 KB): the count comes from the file's first 64 KiB
  const twelve = path.join(tmp(), 'twelve.dcm');
  writeFileSync(twelve, dicomOf(Array.from({ length: 12 }, (_, k) => flip(stored, FLIPS[k % 3]!))));
  assert.equal(expandFrames([twelve], {}).length, 12);
  assert.equal(dicomFrameCount(readFileSync(twelve).subarray(0, 2000), 'twelve'), 12);
  assert.equal(dicomFrameCount(readFileSync(twelve).subarray(0, 1000), 'twelve'), null); // cut before the pixel data
});

test('vitkit run --image: every frame a batch row; file#frame=k and --frame k pick one (pydicom window01, flipped)', () => {
  const m = identityModel(S);
  const { multi } = folder();
  const out = path.join(tmp(), 'o.safetensors');
  const run = (...a: string[]) => {
    const r = vitkit('run', '--model', m, '--output', out, '--outputs', 'pixel_values', '--overwrite', ...a);
    assert.equal(r.code, 0, r.err);
    return readSafetensors(out).f32('pixel_values');
  };
  const all = run('--image', multi);
  assert.deepEqual(all.shape, [3, 1, S, S]);
  FLIPS.forEach((f, k) => assert.ok(maxAbsDiff(all.data.subarray(k * S * S, (k + 1) * S * S), flip(window01, f)) <= 1e-6, `frame ${k}`));
  const one = run('--image', `${multi}#frame=1`);
  assert.deepEqual(one.shape, [1, 1, S, S]);
  assert.ok(maxAbsDiff(one.data, flip(window01, 'lr')) <= 1e-6);
  const k2 = run('--image', multi, '--frame', '2');
  assert.deepEqual(k2.shape, [1, 1, S, S]);
  assert.ok(maxAbsDiff(k2.data, flip(window01, 'tb')) <= 1e-6);
});

test('predict, embed, explain and fewshot take every frame as its own image, named file#frame=k; --frame k keeps one', () => {
  const m = identityModel(S);
  const { dir, multi, single } = folder();
  type Pred = { image: string; top: { index: number; score: number }[] };
  const predict = (...a: string[]) => {
    const r = vitkit('predict', '--model', m, '--json', '--top-k', '2', ...a);
    assert.equal(r.code, 0, r.err);
    return JSON.parse(r.out) as Pred[];
  };
  const p = predict(dir);
  assert.deepEqual(p.map((x) => x.image), [0, 1, 2].map((k) => `${multi}#frame=${k}`));
  const s = predict(...FLIPS.map((f) => single[f]));
  FLIPS.forEach((_, k) => assert.deepEqual(p[k]!.top, s[k]!.top, `frame ${k} scores equal the single-frame file's`));
  assert.notDeepEqual(s[0]!.top, s[1]!.top); // the frames differ
  const one = predict('--frame', '1', multi);
  assert.deepEqual(one.map((x) => x.image), [`${multi}#frame=1`]);
  assert.deepEqual(one[0]!.top, s[1]!.top);
  const bad = vitkit('predict', '--model', m, '--json', '--frame', '3', multi);
  assertUserError(bad, /frame in 0\.\.2.*multi\.dcm/);
  assert.equal(bad.code, 1);

  const emb = path.join(tmp(), 'e.jsonl');
  const e = vitkit('embed', '--model', m, '--out', emb, dir);
  assert.equal(e.code, 0, e.err);
  const rows = readFileSync(emb, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(rows.length, 3);
  assert.ok(rows.every((r, k) => JSON.stringify(r).includes(`multi.dcm#frame=${k}`)), JSON.stringify(rows.map((r) => Object.keys(r))));

  const exOut = tmp();
  const x = vitkit('explain', '--model', m, '--out', exOut, multi);
  assert.equal(x.code, 0, x.err);
  assert.deepEqual(readdirSync(exOut).filter((f) => f.endsWith('.rollout.png')).sort(), ['multi.frame0.rollout.png', 'multi.frame1.rollout.png', 'multi.frame2.rollout.png']);

  const sup = tmp();
  mkdirSync(path.join(sup, 'a'));
  mkdirSync(path.join(sup, 'b'));
  copyFileSync(multi, path.join(sup, 'a', 'multi.dcm'));
  copyFileSync(single.lr, path.join(sup, 'b', 'one.dcm'));
  const fs = vitkit('fewshot', '--model', m, '--support', sup, multi);
  assert.equal(fs.code, 0, fs.err);
  assert.match(fs.out, /support: 2 classes \(a 3, b 1\)/);
  const fj = vitkit('fewshot', '--model', m, '--support', sup, '--json', multi);
  assert.equal(fj.code, 0, fj.err);
  assert.deepEqual((JSON.parse(fj.out) as { image: string }[]).map((q) => q.image), [0, 1, 2].map((k) => `${multi}#frame=${k}`));
});

test('zeroshot and index (CLIP) take every frame as its own image', { skip: skipClip }, () => {
  const { dir, multi, single } = folder();
  const zs = (...a: string[]) => {
    const r = vitkit('zeroshot', '--model', CLIP_DIR, '--labels', 'a brain scan,a cat', '--template', '{}', '--json', ...a);
    assert.equal(r.code, 0, r.err);
    return JSON.parse(r.out) as { image: string; top: { score: number }[] }[];
  };
  const z = zs(multi);
  assert.deepEqual(z.map((q) => q.image), [0, 1, 2].map((k) => `${multi}#frame=${k}`));
  const zs1 = zs(single.tb);
  assert.deepEqual(z[2]!.top, zs1[0]!.top);
  const out = path.join(tmp(), 'idx');
  const r = vitkit('index', '--model', CLIP_DIR, dir, '--out', out);
  assert.equal(r.code, 0, r.err);
  const q = vitkit('search', '--index', out, '--json', '--top-k', '3', 'a brain scan');
  assert.equal(q.code, 0, q.err);
  const names = (JSON.parse(q.out) as { path: string }[]).map((h) => path.basename(h.path)).sort();
  assert.deepEqual(names, ['multi.dcm#frame=0', 'multi.dcm#frame=1', 'multi.dcm#frame=2']);
});

/** root/a: multi.dcm (3 frames), root/b: CT_small.dcm (128 x 128, no window of its own) */
function evalFolder(): string {
  const root = tmp();
  mkdirSync(path.join(root, 'a'));
  mkdirSync(path.join(root, 'b'));
  writeFileSync(path.join(root, 'a', 'multi.dcm'), MULTI);
  copyFileSync(path.join(DIR, 'CT_small.dcm'), path.join(root, 'b', 'ct.dcm'));
  return root;
}

test('eval and train folders: frames are samples, and --window reaches the data workers (--workers 2 = --workers 0)', () => {
  const m = identityModel(S);
  const root = evalFolder();
  const ev = (...a: string[]) => {
    const r = vitkit('eval', '--model', m, '--data', root, '--json', ...a);
    assert.equal(r.code, 0, r.err);
    return JSON.parse(r.out) as { count: number; loss: number; acc: number };
  };
  const w0 = ev('--workers', '0', '--window', '40,400');
  assert.equal(w0.count, 4);
  const w2 = ev('--workers', '2', '--batch-size', '2', '--window', '40,400');
  assert.deepEqual(w2, { ...w0 });
  const own = ev('--workers', '0'); // the files' own windows / minmax: other pixels, another loss
  assert.notEqual(own.loss, w0.loss);
  const fr = ev('--workers', '2', '--frame', '0');
  assert.equal(fr.count, 2);
  // an unreadable DICOM is left to the decoder: --on-bad-image skip skips it (listing the frames does not fail)
  const broken = Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), Buffer.from([0x02, 0x00, 0x10])]);
  writeFileSync(path.join(root, 'a', 'broken.dcm'), broken);
  const sk = vitkit('eval', '--model', m, '--data', root, '--json', '--workers', '0', '--on-bad-image', 'skip');
  assert.equal(sk.code, 0, sk.err);
  assert.equal((JSON.parse(sk.out) as { count: number }).count, 4);
  assert.match(sk.err, /skipped unreadable image .*broken\.dcm/);
  assertUserError(vitkit('eval', '--model', m, '--data', root, '--workers', '0', '--window', '40,400'), /broken\.dcm/);
  rmSync(path.join(root, 'a', 'broken.dcm'));

  const train = (workers: string) => {
    const out = path.join(tmp(), 'run');
    const r = vitkit('train', '--model', m, '--data', root, '--epochs', '1', '--batch-size', '2', '--workers', workers, '--window', '40,400', '--seed', '3', '--out', out);
    assert.equal(r.code, 0, r.err);
    return readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { train_loss: number }).train_loss);
  };
  assert.deepEqual(train('2'), train('0'));
});

test('the inference workers use the caller\'s --window, not the file\'s (embedImages; classify shares its preprocessing)', async () => {
  const { embedImages, closeSessions } = await import('../../src/node/inference.js');
  const m = identityModel(128);
  const ct = path.join(DIR, 'CT_small.dcm');
  const loaded = loadModel(m);
  const local = async (window: { center: number; width: number } | 'minmax') => {
    const px = await preprocessImage(ct, loaded.preprocess, undefined, { window });
    return embedPixels(loaded.model, new Tensor([1, 1, 128, 128], px));
  };
  try {
    setMedicalDefaults({ window: { center: 40, width: 400 } });
    const soft = (await embedImages(ct, { model: m })).data;
    setMedicalDefaults({ window: 'minmax' });
    const mm = (await embedImages(ct, { model: m })).data;
    assert.ok(maxAbsDiff(soft, await local({ center: 40, width: 400 })) <= 1e-5);
    assert.ok(maxAbsDiff(mm, await local('minmax')) <= 1e-5);
    assert.ok(maxAbsDiff(soft, mm) > 1e-3, 'the two windows give different embeddings');
  } finally {
    setMedicalDefaults({});
    await closeSessions();
  }
});
