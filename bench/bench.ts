/**
 * `npm run bench`: ViT-Ti/16 inference throughput against onnxruntime-node on the same weights,
 * in the same run, at batch 1 and 8 on 1 and 2 threads; then GEMM GFLOP/s at the ViT-Ti and
 * ViT-B layer shapes next to this machine's measured FMA peak. Medians of several runs.
 *   node dist/bench/bench.js [--json] [--reps N] [--quick]     (--device webgpu: bench/webgpu.ts)
 */
import { existsSync, readFileSync } from 'node:fs';
import { decodeDicom } from '../src/io/dicom.js';
import { windowDicom } from '../src/io/medical.js';
import { createRequire } from 'node:module';
import path from 'node:path';
import { loadModel } from '../src/io/checkpoint.js';
import { loadAddon, packageRoot } from '../src/backend/native.js';
import { Tensor } from '../src/tensor.js';
import { loadImage } from '../src/io/image.js';
import { preprocessFromTimm, geometry, toPixelValues } from '../src/io/preprocess.js';

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
async function timeit(fn: () => unknown | Promise<unknown>, warm = 2): Promise<number> {
  for (let i = 0; i < warm; i++) await fn();
  const ts: number[] = [];
  for (let i = 0; i < REPS; i++) {
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

async function modelBench(): Promise<void> {
  if (!existsSync(MODEL_DIR) || !existsSync(ONNX)) {
    log(`skipping the model benchmark: ${MODEL_DIR} or ${ONNX} is missing (../shared/refs beside the checkout)`);
    return;
  }
  // onnxruntime-node is the benchmark's own dependency (bench/package.json, installed by `npm run bench`);
  // its API is onnxruntime-common's (a devDependency, for the types)
  let ort: typeof import('onnxruntime-common') | undefined;
  try {
    ort = createRequire(path.join(packageRoot, 'bench', 'package.json'))('onnxruntime-node') as typeof import('onnxruntime-common');
  } catch (e) {
    log(`onnxruntime-node is not installed (${(e as Error).message.split('\n')[0]}); run npm run bench (node scripts/bench-deps.mjs)`);
  }
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
  const t = await timeit(() => windowDicom(decodeDicom(bytes, 'ct512'), 'ct512', { window: { center: 40, width: 400 } }));
  log(`DICOM 512x512 CT slice: decode + modality LUT + window 40/400: ${(t * 1e3).toFixed(2)} ms`);
  emit({ dicom: 'decode+window 512x512 CT', ms: +(t * 1e3).toFixed(3) });
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

await modelBench();
await gemmBench();
await preprocessBench();
await dicomBench();
