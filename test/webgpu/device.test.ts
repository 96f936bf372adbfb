/**
 * WebGPU beyond the case table: the training ops against the CPU training code (loss.ts,
 * optim.ts), erf's accuracy, NaN / Inf propagation through the GEMM, views at unaligned
 * offsets and aliased arguments, one submission per chain of ops, and the errors a caller gets.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { reference } from '../../src/backend/reference.js';
import { crossEntropy } from '../../src/train/loss.js';
import { argmaxRows } from '../../src/nn/functional.js';
import { AdamW, clipGradNorm } from '../../src/train/optim.js';
import { ParamTable } from '../../src/nn/params.js';
import { VitkitError } from '../../src/errors.js';
import { randn, maxAbsDiff } from '../helpers.js';
import { getTestDevice } from './setup.js';

const { dev, reason } = await getTestDevice();
const skip = dev ? false : reason;
after(() => dev?.dispose());

function upload(a: Float32Array | Int32Array) {
  const t = dev!.alloc([a.length], a instanceof Int32Array ? 'i32' : 'f32');
  dev!.write(t, a);
  return t;
}

// ---- erf ---------------------------------------------------------------------------------------

/** erfc in double for z >= 0: 1 - the Maclaurin series below 3, a continued fraction above */
function erfc64(z: number): number {
  if (z < 3) {
    let term = z, sum = z;
    for (let n = 1; n < 80; n++) {
      term *= -z * z / n;
      sum += term / (2 * n + 1);
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * sum;
  }
  let k = z;
  for (let n = 120; n >= 1; n--) k = z + (n / 2) / k;
  return Math.exp(-z * z) / (Math.sqrt(Math.PI) * k);
}
const erf64 = (x: number) => (x < 0 ? -1 : 1) * (1 - erfc64(Math.abs(x)));

test('webgpu erf: relative error below 2.5e-7 (4 float32 ulp) from 1e-8 to 10, odd, NaN stays NaN', { skip }, async () => {
  const xs: number[] = [0, 1e-8, 3e-6, 1e-4, 0.01, 0.3];
  for (let x = -6; x <= 6; x += 0.0137) xs.push(x);
  xs.push(0.7499999, 0.75, 0.999999, 1, 1.000001, 10, -10, 30);
  const x = new Float32Array([...xs, NaN]);
  const out = dev!.alloc([x.length]);
  dev!.erf(out, upload(x), x.length);
  const got = await dev!.read(out);
  let worst = 0;
  for (let i = 0; i < xs.length; i++) {
    const want = erf64(x[i]!);
    const rel = want === 0 ? Math.abs(got[i]!) : Math.abs(got[i]! - want) / Math.abs(want);
    worst = Math.max(worst, rel);
    assert.ok(rel <= 2.5e-7, `erf(${x[i]}) = ${got[i]}, want ${want} (relative error ${rel})`);
  }
  assert.ok(Number.isNaN(got[xs.length]!));
  assert.ok(worst > 0, 'a float32 erf cannot be exact everywhere');
  // odd: the grid from -6 to 6 has each point's negation at the mirrored index (to float32 rounding)
  const i0 = 6, count = xs.indexOf(0.7499999) - i0;
  for (let k = 0; k < count; k++) {
    if (x[i0 + k] === -x[i0 + count - 1 - k]!) assert.equal(got[i0 + k], -got[i0 + count - 1 - k]!, `erf(-x) = -erf(x) at ${x[i0 + k]}`);
  }
});

test('webgpu GELU (erf): relative error below 6e-7 on [-10, 10], the negative tail included (from erfc)', { skip }, async () => {
  const xs: number[] = [];
  for (let x = -10; x <= 10; x += 0.00731) xs.push(x);
  xs.push(1e-6, -1e-6, -1.4142135, -1.4142137, -0.0001);
  const x = new Float32Array(xs);
  const out = dev!.alloc([x.length]);
  dev!.geluForward(out, upload(x), x.length, 0);
  const got = await dev!.read(out);
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    // 0.5 x (1 + erf(x / sqrt 2)); for x < 0, 1 + erf(x / sqrt 2) = erfc(-x / sqrt 2) without cancellation
    const want = v < 0 ? 0.5 * v * erfc64(-v / Math.SQRT2) : 0.5 * v * (1 + erf64(v / Math.SQRT2));
    const rel = Math.abs(got[i]! - want) / Math.abs(want);
    assert.ok(rel <= 6e-7, `gelu(${v}) = ${got[i]}, want ${want} (relative error ${rel})`);
  }
});

// ---- GEMM edge cases ---------------------------------------------------------------------------

test('webgpu gemm propagates NaN and Inf from A and B; beta = 0 never reads C', { skip }, async () => {
  const M = 19, N = 23, K = 31;
  const A = randn(M * K, 1), B = randn(N * K, 2);
  A[3 * K + 4] = NaN;
  B[5 * K + 6] = Infinity;
  const C = upload(new Float32Array(M * N).fill(NaN));
  dev!.gemm(false, true, M, N, K, 1, upload(A), K, upload(B), K, 0, C, N);
  const got = await dev!.read(C);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      const v = got[i * N + j]!;
      if (i === 3) assert.ok(Number.isNaN(v), `row 3 must be NaN at ${j}`);
      else if (j === 5) assert.ok(!Number.isFinite(v), `column 5 must be infinite at row ${i}`);
      else assert.ok(Number.isFinite(v), `C[${i},${j}] must be finite`);
    }
  }
});

test('webgpu views at unaligned offsets of one buffer: gemm reads A and B and writes C inside it', { skip }, async () => {
  const M = 29, N = 37, K = 41;
  const oA = 3, oB = 3 + M * K + 1, oC = oB + K * N + 5;
  const host = randn(oC + M * N + 11, 50);
  const big = upload(host);
  const A = dev!.view(big, oA, [M, K]), B = dev!.view(big, oB, [K, N]), C = dev!.view(big, oC, [M, N]);
  dev!.gemm(false, false, M, N, K, 1, A, K, B, N, 0.5, C, N);
  const got = await dev!.read(big);
  const want = host.slice();
  reference.gemm(false, false, M, N, K, 1, host.subarray(oA, oA + M * K), K, host.subarray(oB, oB + K * N), N, 0.5,
    want.subarray(oC, oC + M * N), N);
  assert.ok(maxAbsDiff(got, want) <= 2e-6 * Math.sqrt(K) * 8, `max abs error ${maxAbsDiff(got, want)}`);
  assert.deepEqual(got.subarray(0, oA), host.subarray(0, oA));
  assert.deepEqual(got.subarray(oC + M * N), host.subarray(oC + M * N));
});

test('webgpu aliasing: add in place, layernormBackward into adjacent views of one gradient buffer', { skip }, async () => {
  const n = 1000;
  const a = randn(n, 51), b = randn(n, 52);
  const ta = upload(a);
  dev!.add(ta, ta, upload(b), n);
  const want = new Float32Array(n);
  reference.add(want, a, b, n);
  assert.deepEqual(await dev!.read(ta), want);

  const R = 7, C = 33;
  const x = randn(R * C, 53), w = randn(C, 54), bb = randn(C, 55), g = randn(R * C, 56);
  const grads = new Float32Array(2 * C + 3);
  const tg = upload(grads);
  const out = dev!.alloc([R * C]), mean = dev!.alloc([R]), rstd = dev!.alloc([R]), dx = upload(new Float32Array(R * C));
  const tx = upload(x), tw = upload(w);
  dev!.layernormForward(out, mean, rstd, tx, tw, upload(bb), R, C, 1e-5);
  dev!.layernormBackward(dx, dev!.view(tg, 1, [C]), dev!.view(tg, 1 + C, [C]), upload(g), tx, tw, mean, rstd, R, C);
  const got = await dev!.read(tg);
  const hout = new Float32Array(R * C), hm = new Float32Array(R), hr = new Float32Array(R), hdx = new Float32Array(R * C);
  reference.layernormForward(hout, hm, hr, x, w, bb, R, C, 1e-5);
  const hw = new Float32Array(C), hb = new Float32Array(C);
  reference.layernormBackward(hdx, hw, hb, g, x, w, hm, hr, R, C);
  assert.ok(maxAbsDiff(got.subarray(1, 1 + C), hw) < 1e-5);
  assert.ok(maxAbsDiff(got.subarray(1 + C, 1 + 2 * C), hb) < 1e-5);
  assert.equal(got[0], 0);
  assert.equal(got[2 * C + 1], 0);
});

test('webgpu copy and fill: views, i32 copies, fill of a view only', { skip }, async () => {
  const src = upload(randn(100, 57));
  const dst = upload(new Float32Array(100));
  dev!.copy(dev!.view(dst, 10, [30]), dev!.view(src, 50, [30]), 30);
  dev!.fill(dev!.view(dst, 60, [5]), -2.5);
  const got = await dev!.read(dst);
  const s = randn(100, 57);
  for (let i = 0; i < 100; i++) {
    const want = i >= 10 && i < 40 ? s[i + 40]! : i >= 60 && i < 65 ? -2.5 : 0;
    assert.equal(got[i], want, `element ${i}`);
  }
  // within one buffer (copyBufferToBuffer refuses that: a kernel copies)
  const one = upload(s);
  dev!.copy(dev!.view(one, 60, [25]), dev!.view(one, 3, [25]), 25);
  const o = await dev!.read(one);
  for (let i = 0; i < 100; i++) assert.equal(o[i], i >= 60 && i < 85 ? s[i - 57]! : s[i]!, `in-buffer copy, element ${i}`);
  assert.throws(() => dev!.copy(dev!.view(one, 10, [25]), dev!.view(one, 20, [25]), 25), /overlap/);
  const labels = upload(new Int32Array([5, -1, 7, 2 ** 30]));
  const l2 = dev!.alloc([4], 'i32');
  dev!.copy(l2, labels, 4);
  assert.deepEqual(await dev!.readInt(l2), new Int32Array([5, -1, 7, 2 ** 30]));
  const li = upload(new Int32Array([1, 2, 3, 4, 5, 6]));
  dev!.copy(dev!.view(li, 4, [2]), dev!.view(li, 0, [2]), 2);
  assert.deepEqual(await dev!.readInt(li), new Int32Array([1, 2, 3, 4, 1, 2]));
});

// ---- training ops ------------------------------------------------------------------------------

for (const [B, K, eps] of [[5, 13, 0.1], [8, 10, 0], [3, 1000, 0.1]] as const) {
  test(`webgpu cross-entropy B=${B} K=${K} label smoothing ${eps} = loss.ts`, { skip }, async () => {
    const logits = randn(B * K, 60 + K, 4);
    const y = new Int32Array(B).map((_, i) => (i * 7 + 3) % K);
    const want = crossEntropy(logits, y, eps, K);
    const tl = upload(logits), ty = upload(y);
    const loss = dev!.alloc([1]), dl = dev!.alloc([B, K]);
    dev!.crossEntropyForward(loss, tl, ty, B, K, eps);
    dev!.crossEntropyBackward(dl, tl, ty, B, K, eps);
    const [l] = await dev!.read(loss);
    assert.ok(Math.abs(l! - want.loss) <= 2e-6 * Math.max(1, Math.abs(want.loss)), `loss ${l} vs ${want.loss}`);
    assert.ok(maxAbsDiff(await dev!.read(dl), want.dlogits) <= 1e-7, `dlogits error ${maxAbsDiff(await dev!.read(dl), want.dlogits)}`);
  });
}

for (const [B, K, eps] of [[3, 10, 0], [3, 1000, 0.1], [8, 10, 0.1], [5, 257, 0]] as const) {
  test(`webgpu soft-target cross-entropy (mixup / cutmix) B=${B} K=${K} label smoothing ${eps} = loss.ts`, { skip }, async () => {
    const logits = randn(B * K, 160 + K, 4);
    // rows of timm's mixup_target: two smoothed one-hots mixed with weights lam, 1 - lam
    const t = new Float32Array(B * K); // (B, K)
    for (let b = 0; b < B; b++) {
      const lam = 0.2 + 0.15 * b, off = 0.1 / K;
      for (let k = 0; k < K; k++) t[b * K + k] = off;
      t[b * K + ((b * 7 + 3) % K)]! += lam * 0.9;
      t[b * K + ((b * 5 + 1) % K)]! += (1 - lam) * 0.9;
    }
    const want = crossEntropy(logits, t, eps, K);
    const tl = upload(logits), tt = upload(t);
    const loss = dev!.alloc([1]), dl = dev!.alloc([B, K]);
    dev!.softCrossEntropyForward(loss, tl, tt, B, K, eps);
    dev!.softCrossEntropyBackward(dl, tl, tt, B, K, eps);
    const [l] = await dev!.read(loss);
    assert.ok(Math.abs(l! - want.loss) <= 2e-6 * Math.max(1, Math.abs(want.loss)), `loss ${l} vs ${want.loss}`);
    const e = maxAbsDiff(await dev!.read(dl), want.dlogits);
    assert.ok(e <= 1e-7, `dlogits error ${e}`);
  });
}

test('webgpu soft-target cross-entropy names a short targets tensor', { skip }, async () => {
  const tl = upload(randn(12, 3)), tt = upload(new Float32Array(11));
  assert.throws(() => dev!.softCrossEntropyForward(dev!.alloc([1]), tl, tt, 3, 4, 0), /softCrossEntropyForward: targets has 11 elements, expected at least 12/);
});

for (const [R, C] of [[3, 10], [3, 1000], [300, 7], [1, 1]] as const) {
  test(`webgpu argmaxRows R=${R} C=${C} = the first maximum (torch.argmax)`, { skip }, async () => {
    const x = randn(R * C, 200 + C, 2);
    // ties: row 0's maximum appears twice, the first must win
    if (C > 2) { let m = 0; for (let c = 1; c < C; c++) if (x[c]! > x[m]!) m = c; x[(m + 1) % C] = x[m]!; }
    const want = argmaxRows(x, R, C);
    const out = dev!.alloc([R], 'i32');
    dev!.argmaxRows(out, upload(x), R, C);
    assert.deepEqual(await dev!.readInt(out), want);
    if (C > 1) assert.ok(new Set(want).size > 1 || R === 1, 'the rows have different maxima');
  });
}

test('webgpu cross-entropy: a label out of range makes the loss and its row NaN', { skip }, async () => {
  const B = 3, K = 4;
  const tl = upload(randn(B * K, 70)), ty = upload(new Int32Array([1, 4, 0]));
  const loss = dev!.alloc([1]), dl = dev!.alloc([B, K]);
  dev!.crossEntropyForward(loss, tl, ty, B, K, 0);
  dev!.crossEntropyBackward(dl, tl, ty, B, K, 0);
  assert.ok(Number.isNaN((await dev!.read(loss))[0]!));
  const g = await dev!.read(dl);
  for (let k = 0; k < K; k++) {
    assert.ok(Number.isNaN(g[K + k]!), 'row 1 NaN');
    assert.ok(Number.isFinite(g[k]!) && Number.isFinite(g[2 * K + k]!), 'rows 0 and 2 finite');
  }
});

test('webgpu AdamW: 3 steps with timm parameter groups = optim.ts AdamW', { skip }, async () => {
  const specs = [
    { name: 'pos_embed', shape: [1, 5, 3] },
    { name: 'blocks.0.attn.qkv.weight', shape: [9, 13] },
    { name: 'blocks.0.attn.qkv.bias', shape: [9] },
    { name: 'head.weight', shape: [4, 7] },
  ];
  const params = new ParamTable(specs, randn(15 + 117 + 9 + 28, 80));
  const opt = new AdamW(params, { lr: 1e-2, weightDecay: 0.05 });
  const tp = upload(params.buffer.slice()), tm = upload(new Float32Array(params.count)), tv = upload(new Float32Array(params.count));
  for (let step = 1; step <= 3; step++) {
    const g = randn(params.count, 90 + step, 2);
    opt.step(g.slice());
    const tg = upload(g);
    for (const s of opt.segments) {
      const v = (t: typeof tp) => dev!.view(t, s.offset, [s.length]);
      dev!.adamw(v(tp), v(tg), v(tm), v(tv), s.length, 1e-2 * s.lrScale, 0.9, 0.999, 1e-8, s.weightDecay, step);
    }
    const got = await dev!.read(tp);
    assert.ok(maxAbsDiff(got, params.buffer) <= 1e-6, `step ${step}: max abs error ${maxAbsDiff(got, params.buffer)}`);
    assert.notDeepEqual(got, randn(params.count, 80));
  }
  const st = opt.state();
  assert.ok(maxAbsDiff(await dev!.read(tm), st.expAvg) <= 1e-7);
  assert.ok(maxAbsDiff(await dev!.read(tv), st.expAvgSq) <= 1e-7);
});

test('webgpu clipGradNorm = optim.ts clipGradNorm (clipped, not clipped, NaN); adamw gradScale', { skip }, async () => {
  const n = 100003;
  for (const maxNorm of [1, 1e6]) {
    const g = randn(n, 100, 0.1);
    const want = g.slice();
    const norm = clipGradNorm(want, maxNorm);
    const tg = upload(g), tn = dev!.alloc([1]);
    dev!.clipGradNorm(tg, tn, n, maxNorm);
    const [gn] = await dev!.read(tn);
    assert.ok(Math.abs(gn! - norm) <= 1e-6 * norm, `norm ${gn} vs ${norm}`);
    const got = await dev!.read(tg);
    assert.ok(maxAbsDiff(got, want) <= 1e-6 * 0.1, `clipped grads error ${maxAbsDiff(got, want)}`);
    if (maxNorm > norm) assert.deepEqual(got, g, 'unclipped gradients are untouched');
  }
  const g = randn(1000, 101);
  g[17] = NaN;
  const tg = upload(g), tn = dev!.alloc([1]);
  dev!.clipGradNorm(tg, tn, 1000, 1);
  assert.ok(Number.isNaN((await dev!.read(tn))[0]!));
  assert.ok((await dev!.read(tg)).every((v) => Number.isNaN(v)), 'NaN norm: every gradient NaN (torch)');

  // adamw with the gradient scaled on the device = adamw on the scaled gradient
  const p0 = randn(300, 102), gr = randn(300, 103);
  const scale = upload(new Float32Array([0.25]));
  const pa = upload(p0), pb = upload(p0);
  const zeros = () => upload(new Float32Array(300));
  dev!.adamw(pa, upload(gr), zeros(), zeros(), 300, 1e-3, 0.9, 0.999, 1e-8, 0.05, 1, scale);
  dev!.adamw(pb, upload(gr.map((v) => v * 0.25)), zeros(), zeros(), 300, 1e-3, 0.9, 0.999, 1e-8, 0.05, 1);
  assert.deepEqual(await dev!.read(pa), await dev!.read(pb));
});

// ---- submission and errors ---------------------------------------------------------------------

test('webgpu: a chain of ops between transfers is one submission', { skip }, async () => {
  const R = 9, C = 20;
  const x = upload(randn(R * C, 110)), w = upload(randn(C, 111)), b = upload(randn(C, 112));
  const h = dev!.alloc([R, C]), o = dev!.alloc([R, C]), wt = upload(randn(C * C, 113));
  await dev!.sync();
  const before = dev!.submissions;
  for (let i = 0; i < 4; i++) {
    dev!.layernormForward(h, null, null, x, w, b, R, C, 1e-6);
    dev!.linearForward(o, h, wt, b, R, C, C, false, 0);
    dev!.softmaxForward(x, o, R, C);
  }
  assert.equal(dev!.submissions, before, 'nothing is submitted before the host asks');
  await dev!.read(x);
  assert.equal(dev!.submissions, before + 1, 'twelve ops and a read: one submission');
});

test('webgpu ops reject wrong tensors with a one-line VitkitError', { skip }, () => {
  const small = dev!.alloc([3]), four = dev!.alloc([4]);
  assert.throws(() => dev!.add(small, four, four, 4), (e: Error) => e instanceof VitkitError && /add: out has 3 elements, expected at least 4/.test(e.message));
  assert.throws(() => dev!.geluForward(four, new Float32Array(4) as never, 4, 0), /inp is a tensor of backend undefined/);
  const labels = dev!.alloc([4], 'i32');
  assert.throws(() => dev!.add(four, labels, four, 4), /a is i32, expected f32/);
  assert.throws(() => dev!.write(four, new Float32Array(5)), /has 4 elements but the data has 5/);
  assert.throws(() => dev!.view(four, 2, [3]), /do not fit/);
  assert.throws(() => dev!.im2colPatches(four, four, 1, 1, 2, 3, 2), /not a whole number of 2x2 patches/);
  dev!.release(small);
  assert.throws(() => dev!.add(small, four, four, 3), /out was released/);
  assert.throws(() => dev!.alloc([2], 'f16'), /f16 tensors are not supported/);
});
