/**
 * `npm run bench`: ViT-Ti/16 inference throughput against onnxruntime-node on the same weights,
 * in the same run, at batch 1 and 8 on 1 and 2 threads; then GEMM GFLOP/s at the ViT-Ti and
 * ViT-B layer shapes next to this machine's measured FMA peak; then MAE's ViT-B pre-training step
 * against a ViT-B training step (maeBench). Medians of several runs.
 *   node dist/bench/bench.js [--json] [--reps N] [--quick] [--only model|gemm|preprocess|dicom|detect|mae]     (--device webgpu: bench/webgpu.ts)
 */
import { existsSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { decodeDicom } from '../src/io/dicom.js';
import { windowDicom } from '../src/io/medical.js';
import { createRequire } from 'node:module';
import path from 'node:path';
import { loadModel } from '../src/checkpoint/checkpoint.js';
import { loadAddon, packageRoot } from '../src/backend/native.js';
import { Tensor } from '../src/tensor.js';
import { loadImage } from '../src/io/image.js';
import { preprocessFromTimm, geometry, toPixelValues } from '../src/io/preprocess.js';
import { Yolos, yolosVitConfig, initYolos } from '../src/detect/yolos.js';
import { hungarianMatch } from '../src/detect/criterion.js';
import { exportYolosOnnx } from '../src/export/onnx.js';

const args = process.argv.slice(2);
const devArg = args.indexOf('--device');
if (devArg >= 0 && args[devArg + 1] === 'webgpu') {
  await import('./webgpu.js'); // the GPU benchmark (webgpu.ts), same flags
  process.exit(0);
}
const JSON_OUT = args.includes('--json');
const QUICK = args.includes('--quick');
const repsArg = args.indexOf('--reps');
const REPS = repsArg >= 0 ? Number(args[repsArg + 1]) : QUICK ? 3 : 7;
const REFS = path.resolve(packageRoot, '..', 'shared', 'refs');
const MODEL_DIR = path.join(REFS, 'timm_vit_tiny');
const ONNX = path.join(REFS, 'timm_vit_tiny.onnx');

const addon = loadAddon();
const log = (s: string) => { if (!JSON_OUT) console.log(s); };
const emit = (o: Record<string, unknown>) => { if (JSON_OUT) console.log(JSON.stringify(o)); };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** median seconds per call over REPS timed runs after warm-up runs */
async function timeit(fn: () => unknown | Promise<unknown>, warm = 2, reps = REPS): Promise<number> {
  for (let i = 0; i < warm; i++) await fn();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    ts.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return median(ts);
}

function randomInput(n: number): Float32Array {
  const x = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) { s = (s * 1103515245 + 12345) >>> 0; x[i] = (s / 2 ** 32) * 2 - 1; }
  return x;
}

/**
 * onnxruntime-node is the benchmark's own dependency (bench/package.json, installed by `npm run bench`);
 * its API is onnxruntime-common's (a devDependency, for the types). Undefined (and said) when missing.
 */
function loadOrt(): typeof import('onnxruntime-common') | undefined {
  try {
    return createRequire(path.join(packageRoot, 'bench', 'package.json'))('onnxruntime-node') as typeof import('onnxruntime-common');
  } catch (e) {
    log(`onnxruntime-node is not installed (${(e as Error).message.split('\n')[0]}); run npm run bench (node scripts/bench-deps.mjs)`);
    return undefined;
  }
}

async function modelBench(): Promise<void> {
  if (!existsSync(MODEL_DIR) || !existsSync(ONNX)) {
    log(`skipping the model benchmark: ${MODEL_DIR} or ${ONNX} is missing (../shared/refs beside the checkout)`);
    return;
  }
  const ort = loadOrt();
  const { model } = loadModel(MODEL_DIR);
  log(`ViT-Ti/16 (vit_tiny_patch16_224, 5.72M params, 1.26 GMACs/img) — median of ${REPS} runs, images/s`);
  log(`gemm path: ${addon.gemmIsa()}`);
  log('| batch | threads | vitkit img/s | onnxruntime img/s | ratio |');
  log('| ---: | ---: | ---: | ---: | ---: |');
  for (const threads of [1, 2]) {
    addon.setThreads(threads);
    const session = ort ? await ort.InferenceSession.create(ONNX, {
      intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
    }) : undefined;
    for (const batch of [1, 8]) {
      const x = randomInput(batch * 3 * 224 * 224);
      const t = await timeit(() => model.forward(new Tensor([batch, 3, 224, 224], x)));
      let tOrt = NaN;
      if (session && ort) {
        const feeds = { pixel_values: new ort.Tensor('float32', x, [batch, 3, 224, 224]) };
        tOrt = await timeit(() => session.run(feeds));
      }
      const v = batch / t, o = batch / tOrt;
      log(`| ${batch} | ${threads} | ${v.toFixed(1)} | ${Number.isNaN(o) ? 'n/a' : o.toFixed(1)} | ${Number.isNaN(o) ? 'n/a' : (v / o).toFixed(2)} |`);
      emit({ model: 'vit_tiny_patch16_224', batch, threads, vitkit_img_s: +v.toFixed(2), onnxruntime_img_s: Number.isNaN(o) ? null : +o.toFixed(2) });
    }
    await session?.release();
  }
}

async function gemmBench(): Promise<void> {
  const shapes: [string, number, number, number][] = [
    ['ViT-Ti qkv', 1576, 576, 192], ['ViT-Ti proj', 1576, 192, 192], ['ViT-Ti fc1', 1576, 768, 192], ['ViT-Ti fc2', 1576, 192, 768],
    ['ViT-B qkv', 1576, 2304, 768], ['ViT-B proj', 1576, 768, 768], ['ViT-B fc1', 1576, 3072, 768], ['ViT-B fc2', 1576, 768, 3072],
  ];
  log('');
  log('GEMM C = A @ W^T (M = 197 tokens x batch 8), GFLOP/s, median');
  log('| layer | M x N x K | 1 thread | 2 threads |');
  log('| --- | --- | ---: | ---: |');
  const peaks: number[] = [];
  for (const threads of [1, 2]) {
    addon.setThreads(threads);
    peaks.push(addon.fmaPeak ? addon.fmaPeak(threads, 0.5) : NaN);
  }
  for (const [name, M, N, K] of shapes) {
    const A = randomInput(M * K), W = randomInput(N * K), C = new Float32Array(M * N);
    const g: number[] = [];
    for (const threads of [1, 2]) {
      addon.setThreads(threads);
      const t = await timeit(() => addon.gemm(false, true, M, N, K, 1, A, K, W, K, 0, C, N));
      g.push((2 * M * N * K) / t / 1e9);
      emit({ gemm: name, M, N, K, threads, gflops: +g[g.length - 1]!.toFixed(1), peak_gflops: +peaks[threads - 1]!.toFixed(1) });
    }
    log(`| ${name} | ${M}x${N}x${K} | ${g[0]!.toFixed(1)} | ${g[1]!.toFixed(1)} |`);
  }
  log(`| FMA peak (measured, ${addon.gemmIsa()}) | | ${peaks[0]!.toFixed(1)} | ${peaks[1]!.toFixed(1)} |`);
}

/** image preprocessing (decode excluded): timm's eval transform of a 512x512 photo to 224x224 */
/**
 * A 512x512 CT slice: CT_small.dcm (128x128, explicit VR little endian, signed 16-bit) with Rows and
 * Columns set to 512 and its pixels tiled 4x4; decode (daikon + stored values) + modality LUT + window.
 */
export function ct512(ct: Buffer): Buffer {
  const setUS = (b: Buffer, group: number, elem: number, v: number) => {
    const tag = Buffer.from([group & 255, group >> 8, elem & 255, elem >> 8, 0x55, 0x53, 2, 0]);
    const i = b.indexOf(tag);
    if (i < 0) throw new Error(`no (${group.toString(16)},${elem.toString(16)}) US element`);
    b.writeUInt16LE(v, i + 8);
  };
  const head = Buffer.from(ct);
  const at = head.lastIndexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x57]));
  if (at < 0 || head.readUInt32LE(at + 8) !== 32768) throw new Error('CT_small.dcm: expected 32768 bytes of OW pixel data');
  setUS(head, 0x0028, 0x0010, 512);
  setUS(head, 0x0028, 0x0011, 512);
  const px = head.subarray(at + 12, at + 12 + 32768); // (128, 128) int16 (the elements after it are dropped)
  const big = Buffer.alloc(512 * 512 * 2); // (512, 512) int16
  for (let y = 0; y < 512; y++) for (let tx = 0; tx < 4; tx++) px.copy(big, (y * 512 + tx * 128) * 2, (y % 128) * 256, (y % 128) * 256 + 256);
  const hdr = Buffer.from(head.subarray(0, at + 12));
  hdr.writeUInt32LE(big.length, at + 8);
  return Buffer.concat([hdr, big]);
}

async function dicomBench(): Promise<void> {
  const file = path.join(REFS, 'dicom', 'CT_small.dcm');
  if (!existsSync(file)) return;
  const bytes = new Uint8Array(ct512(readFileSync(file)));
  const reps = Math.max(REPS, 101); // the target is a median of >= 20 runs; 101 (0.2 s) so that a GC spell of a few calls does not move it
  const run = () => windowDicom(decodeDicom(bytes, 'ct512'), 'ct512', { window: { center: 40, width: 400 } });
  // the first call in a process (cold: V8 has not compiled the decoder yet) is what a one-image
  // command pays; measured, then warm-up until the JIT has settled (about 20 calls measured here)
  const c0 = performance.now();
  run();
  const cold = performance.now() - c0;
  for (let i = 0; i < 30; i++) run();
  // wall time, and the process's CPU time (user + system, V8's GC threads included), which a busy
  // machine's other jobs inflate less than wall time
  const wall: number[] = [];
  const cpuMs: number[] = [];
  for (let i = 0; i < reps; i++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    run();
    wall.push(Number(process.hrtime.bigint() - t0) / 1e6);
    const c = process.cpuUsage(c0);
    cpuMs.push((c.user + c.system) / 1e3);
  }
  const t = median(wall);
  const tc = median(cpuMs);
  const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU';
  log('');
  log(`DICOM 512x512 CT slice (signed 16-bit, explicit VR LE): decode + modality LUT + window 40/400, one thread (JavaScript), median of ${reps} after 30 warm-up calls: ${t.toFixed(2)} ms wall (fastest ${Math.min(...wall).toFixed(2)}; the process's first call ${cold.toFixed(2)}), ${tc.toFixed(2)} ms CPU (target < 10 ms: ${tc < 10 ? 'met' : 'MISSED'}) on ${cpu} (${cpus().length} cores, load ${loadavg()[0]!.toFixed(1)}), gemm ISA ${addon.gemmIsa()}`);
  emit({ dicom: 'decode+window 512x512 CT', ms: +t.toFixed(3), min_ms: +Math.min(...wall).toFixed(3), cold_ms: +cold.toFixed(3), cpu_ms: +tc.toFixed(3), reps, cpu, isa: addon.gemmIsa(), load: +loadavg()[0]!.toFixed(2) });
}

async function preprocessBench(): Promise<void> {
  const file = path.join(REFS, 'images', 'astronaut.png');
  if (!existsSync(file)) return;
  const img = await loadImage(file, 3);
  const cfg = preprocessFromTimm({ crop_pct: 0.9, interpolation: 'bicubic' }, 224, 3);
  const t = await timeit(() => toPixelValues(geometry(img, cfg), cfg));
  log('');
  log(`preprocessing 512x512 -> 224x224 (PIL bicubic resize, center crop, normalize): ${(t * 1e3).toFixed(2)} ms`);
  emit({ preprocess: 'timm 512->224', ms: +(t * 1e3).toFixed(3) });
}

/**
 * detection: YOLOS-Ti (hustvl/yolos-tiny's shape: D 192, 12 blocks, 3 heads, 100 det tokens, 91 + 1
 * classes, position grid 50x83) at the Hub config's eval size 512x864, random weights, 2 threads,
 * next to onnxruntime-node on `vitkit export`'s ONNX graph of the same weights at that size
 * (exportYolosOnnx: the position embedding resampled at export); and DETR's Hungarian matcher (cost
 * matrix and exact assignment) for 100 det tokens x 50 targets.
 */
async function detectBench(): Promise<void> {
  const vit = yolosVitConfig({ patch_size: 16, embed_dim: 192, depth: 12, num_heads: 3, mlp_hidden: 768, qkv_bias: true, pe_size: [800, 1333], det_tokens: 100, layer_norm_eps: 1e-12 }, 'bench');
  const model = new Yolos({ vit, numClasses: 91, labels: null });
  initYolos(model, 0);
  const threads = 2;
  addon.setThreads(threads);
  const xd = randomInput(3 * 512 * 864);
  const x = new Tensor([1, 3, 512, 864], xd);
  const t = await timeit(() => model.forward(x), 1);
  const ort = loadOrt();
  let tOrt = NaN;
  if (ort) {
    const session = await ort.InferenceSession.create(exportYolosOnnx(model, { imgSize: [512, 864] }), {
      intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
    });
    const feeds = { pixel_values: new ort.Tensor('float32', xd, [1, 3, 512, 864]) };
    tOrt = await timeit(() => session.run(feeds), 1);
    await session.release();
  }
  const v = 1 / t, o = 1 / tOrt;
  log('');
  log(`YOLOS-Ti 512x864 (1 + 32*54 patches + 100 det tokens), batch 1, ${threads} threads, img/s`);
  log('| vitkit img/s | onnxruntime img/s | ratio |');
  log('| ---: | ---: | ---: |');
  log(`| ${v.toFixed(2)} | ${Number.isNaN(o) ? 'n/a' : o.toFixed(2)} | ${Number.isNaN(o) ? 'n/a' : (v / o).toFixed(2)} |`);
  emit({ detect: 'yolos-ti 512x864', threads, img_s: +v.toFixed(3), onnxruntime_img_s: Number.isNaN(o) ? null : +o.toFixed(3) });
  const Q = 100, T = 50, K1 = 92;
  const logits = randomInput(Q * K1);
  const boxes = Float32Array.from(randomInput(Q * 4), (v) => 0.3 + 0.2 * v);
  const tb = Float32Array.from(randomInput(T * 4), (v) => 0.3 + 0.2 * v);
  const targets = [{ labels: Array.from({ length: T }, (_, i) => i % 91), boxes: tb }];
  const tm = await timeit(() => hungarianMatch(logits, boxes, 1, Q, K1, targets));
  log(`Hungarian matcher, 100 det tokens x 50 targets (cost matrix + exact assignment): ${(tm * 1e3).toFixed(2)} ms`);
  emit({ matcher: '100x50', ms: +(tm * 1e3).toFixed(3) });
}

/**
 * MAE rows: a ViT-B MAE pre-training step (mae_vit_base_patch16: the encoder sees the cls token and
 * 25 % of the 196 patches, the 8-block 512-wide decoder all 197 tokens) against a full ViT-B/16
 * classification training step at the same batch (64; 8 with --quick), and `reconstruct`'s forward
 * (img/s at batch 8). No PyTorch anchor exists for MAE in ../shared/anchors.
 */
async function maeBench(): Promise<void> {
  const { MaskedAutoencoder, initMae } = await import('../src/mae/model.js');
  const { resolveMaeConfig, MAE_PRESETS } = await import('../src/mae/config.js');
  const { MaeTrainer } = await import('../src/train/mae_run.js');
  const { Rng } = await import('../src/data/rng.js');
  const { presetModel } = await import('../src/checkpoint/checkpoint.js');
  const { Trainer } = await import('../src/train/trainer.js');
  const B = QUICK ? 8 : 64, reps = Math.min(REPS, 3);
  addon.setThreads(2);
  const mae = new MaskedAutoencoder(resolveMaeConfig({ ...MAE_PRESETS['mae_vit_base_patch16'] }, 'mae_vit_base_patch16'));
  initMae(mae, 0);
  const mt = new MaeTrainer(mae, { lr: 1e-4, weightDecay: 0.05, schedule: 'constant', warmupSteps: 0, totalSteps: 1, minLr: 0 });
  const x = randomInput(B * 3 * 224 * 224);
  const time = async (fn: () => unknown) => { await fn(); const ts: number[] = []; for (let i = 0; i < reps; i++) { const t0 = process.hrtime.bigint(); await fn(); ts.push(Number(process.hrtime.bigint() - t0) / 1e9); } return median(ts); };
  const tMae = await time(() => mt.step(x, [B, 3, 224, 224], new Rng(1)));
  const vit = presetModel('vit_base_patch16_224').model;
  const tr = new Trainer(vit, { lr: 1e-4, weightDecay: 0.05 });
  const y = Int32Array.from({ length: B }, (_, i) => i % 1000);
  const tVit = await time(() => tr.step(new Tensor([B, 3, 224, 224], x), y));
  const x8 = x.subarray(0, 8 * 3 * 224 * 224);
  const tRec = await time(() => mae.forward(x8, [8, 3, 224, 224], { rng: new Rng(2) }));
  log('');
  log(`MAE (mae_vit_base_patch16), 2 threads, batch ${B}, median of ${reps}:`);
  log('| step | img/s | seconds/step |');
  log('| --- | ---: | ---: |');
  log(`| MAE pre-training step (mask 0.75) | ${(B / tMae).toFixed(2)} | ${tMae.toFixed(2)} |`);
  log(`| ViT-B/16 classification training step | ${(B / tVit).toFixed(2)} | ${tVit.toFixed(2)} |`);
  log(`| reconstruct forward (batch 8) | ${(8 / tRec).toFixed(2)} | ${tRec.toFixed(2)} |`);
  log(`MAE step / ViT-B step time: ${(tMae / tVit).toFixed(2)}`);
  emit({ model: 'mae_vit_base_patch16', batch: B, threads: 2, mae_step_img_s: +(B / tMae).toFixed(3), vit_b_step_img_s: +(B / tVit).toFixed(3), ratio: +(tMae / tVit).toFixed(3), reconstruct_img_s: +(8 / tRec).toFixed(3) });
}

const onlyArg = args.indexOf('--only');
const ONLY = onlyArg >= 0 ? args[onlyArg + 1] : undefined;
const sections: Record<string, () => Promise<void>> = { model: modelBench, gemm: gemmBench, preprocess: preprocessBench, dicom: dicomBench, detect: detectBench, mae: maeBench };
if (ONLY !== undefined && !sections[ONLY]) throw new Error(`--only expects one of ${Object.keys(sections).join(', ')}`);
for (const [name, fn] of Object.entries(sections)) if (ONLY === undefined || ONLY === name) await fn();
