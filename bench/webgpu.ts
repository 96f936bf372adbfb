/**
 * WebGPU benchmark: GEMM TFLOP/s at the ViT-B/16 layer shapes (through linearForward, the op the
 * model runs), fused attention at ViT-B's 12 heads x 197 tokens with and without probabilities,
 * and ViT inference img/s (a forward composed from the device ops, random weights). Times are
 * medians of submitted-and-finished runs (sync after each), after one warm-up that compiles.
 *   node dist/bench/webgpu.js [--json] [--reps N] [--full] [--no-vit]
 * Without --full on a fallback (software) adapter such as SwiftShader, only batch 1 and ViT-Ti
 * run, once each (SwiftShader manages tens of MFLOP/s on 2 cores; a ViT-B forward would take
 * hours). --no-vit leaves out the model forwards.
 */
import { createWebGpuBackend } from '../src/backend/webgpu/index.js';
import type { DeviceBackend, DeviceTensor } from '../src/backend/device.js';
import { vitForward, type VitWeights, type VitDims } from '../test/webgpu/vit.js';

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

// ---- ViT inference -----------------------------------------------------------------------------
const models: [string, VitDims][] = [
  ['ViT-Ti/16', { C: 3, img: 224, P: 16, D: 192, NH: 3, depth: 12, hidden: 768, K: 1000, eps: 1e-6 }],
  ['ViT-S/16', { C: 3, img: 224, P: 16, D: 384, NH: 6, depth: 12, hidden: 1536, K: 1000, eps: 1e-6 }],
  ['ViT-B/16', { C: 3, img: 224, P: 16, D: 768, NH: 12, depth: 12, hidden: 3072, K: 1000, eps: 1e-6 }],
];
for (const [name, d] of NO_VIT ? [] : quick ? models.slice(0, 1) : models) {
  let seed = 10;
  const r = (n: number, sc: number) => rand(dev, n, sc, seed++);
  const w: VitWeights = {
    patchW: r(d.D * d.C * d.P * d.P, 0.02), patchB: r(d.D, 0.02), cls: r(d.D, 0.02), pos: r(((d.img / d.P) ** 2 + 1) * d.D, 0.02),
    blocks: Array.from({ length: d.depth }, () => ({
      ln1w: r(d.D, 1), ln1b: r(d.D, 0.1), qkvW: r(3 * d.D * d.D, 0.05), qkvB: r(3 * d.D, 0.02), projW: r(d.D * d.D, 0.05), projB: r(d.D, 0.02),
      ln2w: r(d.D, 1), ln2b: r(d.D, 0.1), fc1W: r(d.hidden * d.D, 0.05), fc1B: r(d.hidden, 0.02), fc2W: r(d.D * d.hidden, 0.03), fc2B: r(d.D, 0.02),
    })),
    normW: r(d.D, 1), normB: r(d.D, 0.1), headW: r(d.K * d.D, 0.05), headB: r(d.K, 0.02),
  };
  for (const B of quick ? [1] : [1, 8, 64]) {
    const px = r(B * d.C * d.img * d.img, 1);
    let outs: DeviceTensor[] = [];
    const s = await timeit(() => {
      for (const t of outs) dev.release(t);
      const o = vitForward(dev, w, d, B, px);
      outs = [o.logits, o.features];
    }, quick ? 1 : REPS, quick ? 0 : 1);
    emit({ bench: 'vit', model: name, batch: B, seconds: s, imgPerSec: B / s });
    log(`${name} inference batch ${B}: ${(s * 1000).toFixed(0)} ms, ${(B / s).toFixed(2)} img/s`);
    dev.release(px);
  }
}
dev.dispose();
