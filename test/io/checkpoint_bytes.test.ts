/**
 * loadModelFromBytes (the core's loader: config.json parsed, model.safetensors as bytes) against the
 * folder loader and against PyTorch: the same model (every parameter bit for bit), the same
 * preprocessing, labels and metadata, the same logits as loadModel and within the tolerances of
 * ../shared/refs/README.md of the reference (logits, hidden states 1e-4), and the same error
 * messages for the same bad checkpoint.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadModel, loadModelFromBytes, saveHfCheckpoint, configFromTimm, type LoadedModel } from '../../src/checkpoint/checkpoint.js';
import { readSafetensors, serializeSafetensors } from '../../src/io/safetensors.js';
import { imagenetLabels } from '../../src/io/labels.js';
import { VitkitError } from '../../src/errors.js';
import { Tensor } from '../../src/tensor.js';
import { REFS, FIXTURES, maxAbsDiff, tmp, needRefs } from '../helpers.js';

const HF_DIR = path.join(FIXTURES, 'hf_vit_small');
const TIMM_DIR = path.join(REFS, 'timm_vit_tiny');
const TIMM_REF = path.join(REFS, 'timm_vit_tiny_ref.safetensors');

const json = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
const bytes = (file: string) => new Uint8Array(readFileSync(file));

/** everything but the model is equal, and the model's config and every parameter are identical */
function assertSameLoad(a: LoadedModel, b: LoadedModel): void {
  assert.deepEqual(a.model.config, b.model.config);
  assert.deepEqual(a.model.params.names(), b.model.params.names());
  assert.equal(a.model.params.buffer.length, b.model.params.buffer.length);
  assert.ok(a.model.params.buffer.length > 0);
  assert.equal(maxAbsDiff(a.model.params.buffer, b.model.params.buffer), 0, 'parameters differ');
  assert.deepEqual(a.preprocess, b.preprocess);
  assert.deepEqual(a.labels, b.labels);
  assert.deepEqual([a.format, a.name, a.pretrainedCfg], [b.format, b.name, b.pretrainedCfg]);
}

test('hf_vit_small from bytes = the folder loader = transformers (logits, every hidden state)', () => {
  const ref = readSafetensors(path.join(HF_DIR, 'ref.safetensors'));
  const folder = loadModel(HF_DIR);
  const mem = loadModelFromBytes({
    config: json(path.join(HF_DIR, 'config.json')),
    weights: bytes(path.join(HF_DIR, 'model.safetensors')),
    preprocessorConfig: json(path.join(HF_DIR, 'preprocessor_config.json')),
    name: 'hf_vit_small',
  });
  assertSameLoad(mem, folder);
  assert.equal(mem.format, 'hf');
  assert.deepEqual(mem.labels, ['astronaut', 'cat', 'coffee', 'rocket', 'camera']);
  assert.deepEqual([mem.preprocess.height, mem.preprocess.width], [64, 64]);
  const pv = ref.f32('pixel_values');
  const x = new Tensor(pv.shape, pv.data);
  const fm = mem.model.forwardFeatures(x, { hiddenStates: true });
  const ff = folder.model.forwardFeatures(x);
  const logits = mem.model.forwardHead(fm.features);
  assert.equal(maxAbsDiff(logits.data, folder.model.forwardHead(ff.features).data), 0, 'bytes vs folder logits');
  const err = maxAbsDiff(logits.data, ref.f32('logits').data);
  assert.ok(err <= 1e-4, `logits vs transformers: ${err}`);
  for (let i = 0; i < 3; i++) {
    const e = maxAbsDiff(fm.hiddenStates![i]!.data, ref.f32(`hidden_states.${i}`).data);
    assert.ok(e <= 1e-4, `hidden_states.${i} vs transformers: ${e}`);
  }
  // config.json and preprocessor_config.json as text, or as bytes, load the same
  const text = loadModelFromBytes({
    config: readFileSync(path.join(HF_DIR, 'config.json'), 'utf8'),
    weights: bytes(path.join(HF_DIR, 'model.safetensors')),
    preprocessorConfig: readFileSync(path.join(HF_DIR, 'preprocessor_config.json'), 'utf8'),
  });
  assertSameLoad(text, folder);
  const raw = loadModelFromBytes({
    config: bytes(path.join(HF_DIR, 'config.json')),
    weights: bytes(path.join(HF_DIR, 'model.safetensors')),
    preprocessorConfig: bytes(path.join(HF_DIR, 'preprocessor_config.json')),
  });
  assertSameLoad(raw, folder);
  // without its preprocessor config: transformers' defaults, as the folder loader without the file
  const noPp = loadModelFromBytes({ config: json(path.join(HF_DIR, 'config.json')), weights: bytes(path.join(HF_DIR, 'model.safetensors')) });
  const dir = path.join(tmp(), 'nopp');
  mkdirSync(dir);
  for (const f of ['config.json', 'model.safetensors']) copyFileSync(path.join(HF_DIR, f), path.join(dir, f));
  assert.deepEqual(noPp.preprocess, loadModel(dir).preprocess);
});

test('timm vit_tiny_patch16_224 from bytes = the folder loader = timm (logits, features), ImageNet labels when given', (t) => {
  if (!needRefs(t, TIMM_DIR, TIMM_REF)) return;
  const ref = readSafetensors(TIMM_REF);
  const folder = loadModel(TIMM_DIR);
  const src = { config: json(path.join(TIMM_DIR, 'config.json')), weights: bytes(path.join(TIMM_DIR, 'model.safetensors')), name: TIMM_DIR };
  const mem = loadModelFromBytes(src, { imagenetLabels });
  assertSameLoad(mem, folder);
  assert.equal(mem.labels[0], 'tench');
  assert.equal(mem.name, 'vit_tiny_patch16_224');
  // the core has no data files: without the list a 1000-class checkpoint's labels are class_<i>
  const bare = loadModelFromBytes(src, { backend: mem.model.backend });
  assert.deepEqual([bare.labels.length, bare.labels[0], bare.labels[999]], [1000, 'class_0', 'class_999']);
  const pv = ref.f32('pixel_values');
  const x = new Tensor(pv.shape, pv.data);
  const f = mem.model.forwardFeatures(x);
  const logits = mem.model.forwardHead(f.features);
  assert.equal(maxAbsDiff(logits.data, folder.model.forward(x).data), 0, 'bytes vs folder logits');
  const el = maxAbsDiff(logits.data, ref.f32('logits').data);
  const ef = maxAbsDiff(f.features.data, ref.f32('features').data);
  assert.ok(el <= 1e-4, `logits vs timm: ${el}`);
  assert.ok(ef <= 1e-4, `features vs timm: ${ef}`);
  t.diagnostic(`logits ${el.toExponential(2)}, features ${ef.toExponential(2)}`);
});

test('DINOv2 with registers in the HF layout from bytes (layout detection, class-position fold) = timm, at 56x56 and 70x84', (t) => {
  const dir = path.join(REFS, 'timm_dinov2_reg');
  if (!needRefs(t, dir)) return;
  const sd = new Map<string, { shape: number[]; data: Float32Array }>();
  const st = readSafetensors(path.join(dir, 'model.safetensors'));
  for (const k of st.keys()) sd.set(k, st.f32(k));
  const out = path.join(tmp(), 'hf');
  saveHfCheckpoint(out, 'Dinov2WithRegistersModel', configFromTimm(json(path.join(dir, 'config.json'))), sd);
  const mem = loadModelFromBytes({ config: json(path.join(out, 'config.json')), weights: bytes(path.join(out, 'model.safetensors')), name: out });
  assertSameLoad(mem, loadModel(out));
  assert.equal(mem.name, 'Dinov2WithRegistersModel');
  const ref = readSafetensors(path.join(dir, 'ref.safetensors'));
  for (const pre of ['', '@70x84.']) {
    const pv = ref.f32(`${pre}pixel_values`);
    const e = maxAbsDiff(mem.model.forwardFeatures(new Tensor(pv.shape, pv.data)).features.data, ref.f32(`${pre}features`).data);
    assert.ok(e <= 1e-4, `${pre}features vs timm: ${e}`);
  }
});

test('options from bytes as from the folder: another image size resamples pos_embed, another class count resets the head', () => {
  const src = {
    config: json(path.join(HF_DIR, 'config.json')), weights: bytes(path.join(HF_DIR, 'model.safetensors')),
    preprocessorConfig: json(path.join(HF_DIR, 'preprocessor_config.json')), name: HF_DIR,
  };
  const opts = { imgSize: 96, numClasses: 3 };
  const mem = loadModelFromBytes(src, opts);
  const folder = loadModel(HF_DIR, opts);
  assertSameLoad(mem, folder);
  assert.deepEqual(mem.model.params.shape('pos_embed'), [1, 1 + 12 * 12, 96]);
  assert.deepEqual(mem.labels, ['class_0', 'class_1', 'class_2']);
});

/** the message of the VitkitError fn throws */
function message(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof VitkitError, `not a VitkitError: ${String(e)}`);
    assert.ok(!(e as Error).message.includes('\n'), 'a one-line message');
    return (e as Error).message;
  }
  assert.fail('did not throw');
}

test('bad checkpoints: the same one-line errors from bytes as from the folder, naming the files', () => {
  const cfgText = readFileSync(path.join(HF_DIR, 'config.json'), 'utf8');
  const w = bytes(path.join(HF_DIR, 'model.safetensors'));
  const st = readSafetensors(path.join(HF_DIR, 'model.safetensors'));
  const nan: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const k of st.keys()) nan[k] = st.f32(k);
  const bad = nan['vit.encoder.layer.1.output.dense.weight']!.data.slice();
  bad[7] = Number.NaN;
  nan['vit.encoder.layer.1.output.dense.weight'] = { ...nan['vit.encoder.layer.1.output.dense.weight']!, data: bad };
  const cases: { what: string; config: string; weights: Uint8Array; want: RegExp }[] = [
    { what: 'depth against the blocks', config: cfgText.replace('"num_hidden_layers": 3', '"num_hidden_layers": 5'), weights: w, want: /Expected depth 3 in .*config\.json .*but received 5/ },
    { what: 'classes against the head', config: cfgText.replace(/"id2label": \{[^}]*\},/, '').replace(/"label2id": \{[^}]*\},/, '').replace('"architectures"', '"num_labels": 7,\n  "architectures"'), weights: w, want: /num_classes/ },
    { what: 'not JSON', config: '{"architectures": [', weights: w, want: /config\.json is not a valid JSON object/ },
    { what: 'unknown architecture', config: cfgText.replace('ViTForImageClassification', 'ResNetForImageClassification'), weights: w, want: /architecture ResNetForImageClassification is not supported/ },
    { what: 'truncated weights', config: cfgText, weights: w.subarray(0, 5000), want: /model\.safetensors/ },
    { what: 'NaN in a weight', config: cfgText, weights: serializeSafetensors(nan), want: /Expected finite values in tensor "vit\.encoder\.layer\.1\.output\.dense\.weight" \(96, 192\) of .*model\.safetensors but received NaN at index \[0, 7\]/ },
  ];
  assert.ok(cfgText.includes('"num_hidden_layers": 3') && cfgText.includes('"id2label"'), 'fixture changed: the cases would not apply');
  for (const c of cases) {
    const dir = path.join(tmp(), 'ckpt');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'config.json'), c.config);
    writeFileSync(path.join(dir, 'model.safetensors'), c.weights);
    const fromFolder = message(() => loadModel(dir));
    const fromBytes = message(() => loadModelFromBytes({ config: c.config, weights: c.weights, name: dir }));
    assert.match(fromFolder, c.want, c.what);
    assert.equal(fromBytes, fromFolder, c.what);
    assert.ok(fromBytes.includes(dir), `${c.what}: the message names the checkpoint: ${fromBytes}`);
  }
  // per-file names, and the bare file names without any
  const m = message(() => loadModelFromBytes({ config: cases[0]!.config, weights: w, files: { config: 'a/cfg.json', weights: 'b/w.safetensors' } }));
  assert.match(m, /^Expected depth 3 in a\/cfg\.json \(b\/w\.safetensors holds 3 blocks .*\) but received 5$/);
  assert.match(message(() => loadModelFromBytes({ config: cases[0]!.config, weights: w })), /in config\.json \(model\.safetensors holds 3 blocks/);
});

test('bytes loader input checks: weights must be bytes, config a JSON object, before anything is parsed', () => {
  const cfg = json(path.join(HF_DIR, 'config.json'));
  assert.match(message(() => loadModelFromBytes({ config: cfg, weights: [1, 2, 3] as unknown as Uint8Array, name: 'm' })),
    /^Expected the bytes of a \.safetensors file \(a Uint8Array\) for m\/model\.safetensors but received \[1, 2, 3\]$/);
  assert.match(message(() => loadModelFromBytes({ config: [1] as unknown as Record<string, unknown>, weights: new Uint8Array(8) })),
    /^Expected a JSON object \(parsed\), its text or its UTF-8 bytes for config\.json but received \[1\]$/);
  assert.match(message(() => loadModelFromBytes({ config: cfg, weights: new Uint8Array(8), preprocessorConfig: 'nope' })),
    /^preprocessor_config\.json is not a valid JSON object/);
  assert.match(message(() => loadModelFromBytes(null as never)), /^Expected an object \{ config, weights, preprocessorConfig\? \} for the checkpoint but received null$/);
});
