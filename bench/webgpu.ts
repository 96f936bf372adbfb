/**
 * WebGPU benchmark (`npm run bench -- --device webgpu [--json]`): GEMM TFLOP/s at the ViT-B/16
 * layer shapes (through linearForward, the op the model runs), fused attention at ViT-B's 12 heads
 * x 197 tokens with and without probabilities, the model itself (DeviceViT: ViT-Ti/S/B inference
 * img/s at batch 1, 8 and 64, random weights) and its training step (Trainer: ViT-Ti at 224
 * and the MNIST recipe's ViT, img/s), next to the PyTorch anchors of ../shared/anchors. Times are
 * medians of submitted-and-finished runs, after one warm-up that compiles.
 *   node dist/bench/webgpu.js [--json] [--reps N] [--full] [--no-vit]
 * Without --full on a fallback (software) adapter such as SwiftShader, only batch 1 and ViT-Ti
 * run, once each (SwiftShader manages tens of MFLOP/s on 2 cores; a ViT-B forward would take
 * hours). --no-vit leaves out the model forwards and training steps.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createWebGpuBackend } from '../src/backend/webgpu/index.js';
import type { DeviceBackend, DeviceTensor } from '../src/backend/device.js';
import { VisionTransformer } from '../src/models/vit.js';
import { presetConfig } from '../src/models/presets.js';
import { resolveConfig } from '../src/models/config.js';
import { initWeights } from '../src/models/init.js';
import { DeviceViT, type ComputeDevice } from '../src/models/device.js';
import { Trainer } from '../src/train/trainer.js';
import { MNIST_VIT_ARGS } from '../src/data/mnist.js';
import { getBackend } from '../src/backend/index.js';
import { Tensor } from '../src/tensor.js';
import { packageRoot } from '../src/backend/native.js';

const args = process.argv.slice(2);
const JSON_OUT = args.includes('--json');
const FULL = args.includes('--full');
const NO_VIT = args.includes('--no-vit');
const repsArg = args.indexOf('--reps');
const REPS = repsArg >= 0 ? Number(args[repsArg + 1]) : 5;

if (!process.env['VK_ICD_FILENAMES'] && process.platform === 'linux') {
  // without a GPU driver, Dawn finds SwiftShader only through this (Debian's chromium ships it)
  const icd = '/usr/lib/chromium/vk_swiftshader_icd.json';
  const { existsSync } = await import('node:fs');
  if (existsSync(icd)) process.env['VK_ICD_FILENAMES'] = icd;
}

const dev = await createWebGpuBackend({ powerPreference: 'high-performance' });
const software = /swiftshader|llvmpipe|lavapipe|warp/i.test(`${dev.info.description} ${dev.info.architecture}`);
const quick = software && !FULL;
const results: Record<string, unknown>[] = [];
const log = (s: string) => { if (!JSON_OUT) console.log(s); };
const emit = (o: Record<string, unknown>) => { results.push(o); if (JSON_OUT) console.log(JSON.stringify(o)); };
log(`adapter: ${dev.info.description || dev.info.architecture} (${dev.info.vendor})${quick ? ' — software adapter: quick mode (--full for everything)' : ''}`);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function timeit(fn: () => void, reps = quick ? 1 : REPS, warm = 1): Promise<number> {
  for (let i = 0; i < warm; i++) {
    fn();
    await dev.sync();
  }
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    await dev.sync();
    ts.push((performance.now() - t0) / 1000);
  }
  return median(ts);
}

function rand(d: DeviceBackend, n: number, scale: number, seed: number): DeviceTensor {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    a[i] = ((s / 2 ** 32) * 2 - 1) * scale;
  }
  const t = d.alloc([n]);
  d.write(t, a);
  return t;
}

// ---- GEMM at ViT-B layer shapes ----------------------------------------------------------------
const D = 768, HID = 3072;
const shapes: [string, number, number][] = [['qkv', 3 * D, D], ['proj', D, D], ['fc1', HID, D], ['fc2', D, HID]];
for (const B of quick ? [1] : [1, 8, 64]) {
  const M = 197 * B;
  for (const [name, N, K] of shapes) {
    if (quick && name !== 'proj') continue;
    const x = rand(dev, M * K, 1, 1), w = rand(dev, N * K, 0.03, 2), b = rand(dev, N, 0.1, 3), out = dev.alloc([M, N]);
    const s = await timeit(() => dev.linearForward(out, x, w, b, M, N, K, false, name === 'fc1' ? 0 : -1));
    const tflops = (2 * M * N * K) / s / 1e12;
    emit({ bench: 'gemm', layer: name, M, N, K, seconds: s, tflops });
    log(`gemm ViT-B ${name.padEnd(4)} ${M}x${N}x${K}: ${(s * 1000).toFixed(1)} ms, ${(tflops * 1000).toFixed(2)} GFLOP/s`);
    for (const t of [x, w, b, out]) dev.release(t);
  }
}

// ---- attention ---------------------------------------------------------------------------------
for (const B of quick ? [1] : [1, 8]) {
  const N = 197, NH = quick ? 3 : 12, HD = 64, Dm = NH * HD;
  const qkv = rand(dev, B * N * 3 * Dm, 1, 4), out = dev.alloc([B * N * Dm]), probs = dev.alloc([B * NH * N * N]);
  for (const withProbs of [false, true]) {
    const s = await timeit(() => dev.attentionForward(out, withProbs ? probs : null, qkv, B, N, NH, HD, 0.125));
    const gflops = (4 * B * NH * N * N * HD) / s / 1e9;
    emit({ bench: 'attention', B, N, NH, HD, probs: withProbs, seconds: s, gflops });
    log(`attention B=${B} N=${N} NH=${NH} HD=${HD} ${withProbs ? 'with probs   ' : 'online softmax'}: ${(s * 1000).toFixed(1)} ms, ${gflops.toFixed(2)} GFLOP/s`);
  }
  for (const t of [qkv, out, probs]) dev.release(t);
}

// ---- the model: inference and training steps (DeviceViT, Trainer) -------------------------------
const anchorsFile = path.resolve(packageRoot, '..', 'shared', 'anchors', 'torch_h100_bench.json');
const anchors = existsSync(anchorsFile) ? (JSON.parse(readFileSync(anchorsFile, 'utf8')) as { gpu?: Record<string, number | string> }).gpu ?? {} : {};
const anchor = (k: string) => (typeof anchors[k] === 'number' ? ` (PyTorch fp32 on ${anchors['device']}: ${anchors[k]} img/s)` : '');
const cdev = dev as unknown as ComputeDevice;
const host = getBackend();

function pixelsOf(B: number, C: number, H: number, W: number, seed: number): Tensor {
  const n = B * C * H * W, a = new Float32Array(n); // (B, C, H, W)
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) { s = (s * 1664525 + 1013904223) >>> 0; a[i] = (s / 2 ** 32) * 2 - 1; }
  return new Tensor([B, C, H, W], a);
}

async function timeAsync(fn: () => Promise<unknown>, reps: number, warm: number): Promise<number> {
  for (let i = 0; i < warm; i++) await fn();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    ts.push((performance.now() - t0) / 1000);
  }
  return median(ts);
}

const models: [string, string][] = [['ViT-Ti/16', 'vit_tiny_patch16_224'], ['ViT-S/16', 'vit_small_patch16_224'], ['ViT-B/16', 'vit_base_patch16_224']];
for (const [name, preset] of NO_VIT ? [] : quick ? models.slice(0, 1) : models) {
  const m = new VisionTransformer(presetConfig(preset), undefined, host);
  initWeights(m, 0);
  const dm = new DeviceViT(m, cdev);
  for (const B of quick ? [1] : [1, 8, 64]) {
    const x = pixelsOf(B, 3, 224, 224, B);
    // the forward and the read of its logits: what a user waits for
    const s = await timeAsync(() => dm.forward(x), quick ? 1 : REPS, quick ? 0 : 1);
    emit({ bench: 'vit', model: name, batch: B, seconds: s, imgPerSec: B / s });
    log(`${name} inference batch ${B}: ${(s * 1000).toFixed(0)} ms, ${(B / s).toFixed(2)} img/s${B === 64 ? anchor(`${preset}.infer.b256.fp32.img_s`) : ''}`);
  }
  dm.release();
}

const trainCases: [string, ReturnType<typeof resolveConfig>, number][] = [
  ['MNIST recipe ViT (28x28, D 64, depth 4)', resolveConfig({ ...MNIST_VIT_ARGS }, 'bench'), 128],
  ['ViT-Ti/16 at 224', presetConfig('vit_tiny_patch16_224'), quick ? 2 : 32],
];
for (const [name, config, B] of NO_VIT ? [] : trainCases) {
  const m = new VisionTransformer(config, undefined, host);
  initWeights(m, 0);
  const dm = new DeviceViT(m, cdev);
  const t = new Trainer(dm, { lr: 1e-3, weightDecay: 0.05, labelSmoothing: 0.1, totalSteps: 1000 });
  const [H, W] = Array.isArray(config.img_size) ? config.img_size : [config.img_size, config.img_size];
  const x = pixelsOf(B, config.in_chans, H, W, 7);
  const y = Int32Array.from({ length: B }, (_, i) => i % config.num_classes);
  const s = await timeAsync(() => t.step(x, y), quick ? 1 : REPS, quick ? 0 : 1);
  emit({ bench: 'train', model: name, batch: B, seconds: s, imgPerSec: B / s });
  log(`${name} training step batch ${B}: ${(s * 1000).toFixed(0)} ms, ${(B / s).toFixed(1)} img/s`);
  t.release();
  dm.release();
}
dev.dispose();
