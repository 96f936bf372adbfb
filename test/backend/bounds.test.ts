/**
 * The native boundary: every entry point rejects a too-short buffer, a huge dimension, a
 * non-integer, a negative, NaN and a non-number with a VitkitError naming the op and the argument
 * (never truncating, never touching memory it does not own). The calls run in a child process,
 * so a crash (the old i32() truncation or an overflowed size product reached the kernels) is a
 * test failure, not the end of the test runner.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const f32 = (n: number) => new Float32Array(n);

interface Op {
  name: string;
  /** a valid call (must not throw) */
  args: () => unknown[];
  dims: number[];
  bufs: number[];
}

// small valid calls; dims and buffer positions as in src/backend/backend.ts
const ops: Op[] = [
  { name: 'gemm', args: () => [false, false, 3, 4, 5, 1, f32(15), 5, f32(20), 4, 0, f32(12), 4], dims: [2, 3, 4, 7, 9, 12], bufs: [6, 8, 11] },
  { name: 'linearForward', args: () => [f32(12), f32(15), f32(20), f32(4), 3, 4, 5, false, -1], dims: [4, 5, 6], bufs: [0, 1, 2, 3] },
  { name: 'layernormForward', args: () => [f32(12), f32(3), f32(3), f32(12), f32(4), f32(4), 3, 4, 1e-5], dims: [6, 7], bufs: [0, 1, 2, 3, 4, 5] },
  { name: 'layernormBackward', args: () => [f32(12), f32(4), f32(4), f32(12), f32(12), f32(4), f32(3), f32(3).fill(1), 3, 4], dims: [8, 9], bufs: [0, 1, 2, 3, 4, 5, 6, 7] },
  { name: 'geluForward', args: () => [f32(7), f32(7), 7, 0], dims: [2, 3], bufs: [0, 1] },
  { name: 'geluBackward', args: () => [f32(7), f32(7), f32(7), 7, 1], dims: [3, 4], bufs: [0, 1, 2] },
  { name: 'softmaxForward', args: () => [f32(12), f32(12), 3, 4], dims: [2, 3], bufs: [0, 1] },
  { name: 'softmaxBackward', args: () => [f32(12), f32(12), f32(12), 3, 4], dims: [3, 4], bufs: [0, 1, 2] },
  // B=2, N=5, NH=3, HD=2: D=6
  { name: 'attentionForward', args: () => [f32(60), f32(150), f32(180), 2, 5, 3, 2, 0.7, false], dims: [3, 4, 5, 6], bufs: [0, 1, 2] },
  { name: 'attentionBackward', args: () => [f32(180), f32(60), f32(180), f32(150), 2, 5, 3, 2, 0.7, true], dims: [4, 5, 6, 7], bufs: [0, 1, 2, 3] },
  // B=2, C=3, H=8, W=12, P=4
  { name: 'im2colPatches', args: () => [f32(576), f32(576), 2, 3, 8, 12, 4], dims: [2, 3, 4, 5, 6], bufs: [0, 1] },
  { name: 'col2imPatches', args: () => [f32(576), f32(576), 2, 3, 8, 12, 4], dims: [2, 3, 4, 5, 6], bufs: [0, 1] },
  { name: 'add', args: () => [f32(9), f32(9), f32(9), 9], dims: [3], bufs: [0, 1, 2] },
  { name: 'biasAdd', args: () => [f32(12), f32(4), 3, 4], dims: [2, 3], bufs: [0, 1] },
  { name: 'biasBackward', args: () => [f32(4), f32(12), 3, 4], dims: [2, 3], bufs: [0, 1] },
];

const badInts: [string, unknown][] = [
  ['2^32 + 8', 2 ** 32 + 8], ['2^62', 2 ** 62], ['1.5', 1.5], ['-1', -1], ['NaN', NaN], ['Infinity', Infinity], ['"3"', '3'],
];

interface Case { name: string; op: string; args: () => unknown[]; expect: RegExp }

function cases(): Case[] {
  const out: Case[] = [];
  for (const op of ops) {
    out.push({ name: `${op.name} valid`, op: op.name, args: op.args, expect: /^$/ });
    for (const i of op.bufs) {
      out.push({
        name: `${op.name} argument ${i} one element short`, op: op.name, expect: new RegExp(`^native ${op.name}: argument ${i} has \\d+ elements, expected at least \\d+`),
        args: () => { const a = op.args(); a[i] = f32((a[i] as Float32Array).length - 1); return a; },
      });
      out.push({
        name: `${op.name} argument ${i} a Float64Array`, op: op.name, expect: new RegExp(`^native ${op.name}: argument ${i} \\(.*\\) must be a Float32Array`),
        args: () => { const a = op.args(); a[i] = new Float64Array((a[i] as Float32Array).length); return a; },
      });
    }
    for (const i of op.dims) {
      for (const [label, v] of badInts) {
        out.push({
          // R and n may be up to 2^53 - 1: 2^32 + 8 is then refused by the buffer lengths
          name: `${op.name} argument ${i} = ${label}`, op: op.name,
          expect: new RegExp(`^native ${op.name}: (argument ${i} \\(\\w+\\) must be|argument \\d+ has \\d+ elements, expected at least \\d+)`),
          args: () => { const a = op.args(); a[i] = v; return a; },
        });
      }
    }
  }
  // the crashes and silent truncations found in review (issue 7)
  out.push({ name: 'gemm M = 2^32 + 8 is not run as M = 8', op: 'gemm', expect: /^native gemm: argument 2 \(M\) must be an integer in \[0, 2147483647\], received 4294967304$/,
    args: () => [false, false, 2 ** 32 + 8, 4, 5, 1, f32(40), 5, f32(20), 4, 0, f32(32), 4] });
  out.push({ name: 'layernormForward R = 2^62', op: 'layernormForward', expect: /^native layernormForward: argument 6 \(R\) must be an integer/,
    args: () => [f32(12), null, null, f32(12), f32(4), f32(4), 2 ** 62, 4, 1e-5] });
  out.push({ name: 'layernormForward R x C overflows 2^53', op: 'layernormForward', expect: /^native layernormForward: R x C = .* overflows/,
    args: () => [f32(12), null, null, f32(12), f32(2 ** 20), f32(2 ** 20), 2 ** 40, 2 ** 20, 1e-5] });
  out.push({ name: 'im2colPatches with 2^16 dims', op: 'im2colPatches', expect: /^native im2colPatches: B x C x H x W = .* overflows/,
    args: () => [f32(576), f32(576), 2 ** 16, 2 ** 16, 2 ** 16, 2 ** 16, 16] });
  out.push({ name: 'im2colPatches C x P x P beyond int', op: 'im2colPatches', expect: /^native im2colPatches: C x P x P = .* exceeds/,
    args: () => [f32(576), f32(576), 1, 2 ** 20, 2 ** 12, 2 ** 12, 2 ** 12] });
  out.push({ name: 'im2colPatches P does not divide W', op: 'im2colPatches', expect: /^native im2colPatches: argument 6 \(P\) must be a positive divisor of H = 8 and W = 12, received 5$/,
    args: () => [f32(576), f32(576), 2, 3, 8, 12, 5] });
  out.push({ name: 'gemm transA reads (K - 1) * lda + M elements of A', op: 'gemm', expect: /^native gemm: argument 6 has 15 elements, expected at least 23 for A \(K, M\)/,
    args: () => [true, false, 3, 4, 5, 1, f32(15), 5, f32(20), 4, 0, f32(12), 4] });
  out.push({ name: 'gemm transB reads (N - 1) * ldb + K elements of B', op: 'gemm', expect: /^native gemm: argument 8 has 20 elements, expected at least 41 for B \(N, K\)/,
    args: () => [false, true, 3, 4, 5, 1, f32(15), 5, f32(20), 12, 0, f32(12), 4] });
  out.push({ name: 'gemm ldc < N', op: 'gemm', expect: /^native gemm: argument 12 \(ldc\) must be >= N = 4, received 3$/,
    args: () => [false, false, 3, 4, 5, 1, f32(15), 5, f32(20), 4, 0, f32(12), 3] });
  out.push({ name: 'gemm lda < K', op: 'gemm', expect: /^native gemm: argument 7 \(lda\) must be >= 5, received 4$/,
    args: () => [false, false, 3, 4, 5, 1, f32(15), 4, f32(20), 4, 0, f32(12), 4] });
  out.push({ name: 'gemm large ldc addresses past C', op: 'gemm', expect: /^native gemm: argument 11 has 12 elements, expected at least 2004 for C/,
    args: () => [false, false, 3, 4, 5, 1, f32(15), 5, f32(20), 4, 0, f32(12), 1000] });
  out.push({ name: 'gemm transA must be a boolean', op: 'gemm', expect: /^native gemm: argument 0 \(transA\) must be a boolean, received 1$/,
    args: () => [1, false, 3, 4, 5, 1, f32(15), 5, f32(20), 4, 0, f32(12), 4] });
  out.push({ name: 'linearForward act 2', op: 'linearForward', expect: /^native linearForward: argument 8 \(act\) must be -1 \(none\), 0 \(gelu\) or 1 \(gelu_tanh\)/,
    args: () => [f32(12), f32(15), f32(20), null, 3, 4, 5, false, 2] });
  out.push({ name: 'attentionForward 3 x NH x HD beyond int', op: 'attentionForward', expect: /^native attentionForward: 3 x NH x HD = .* exceeds/,
    args: () => [f32(60), null, f32(180), 1, 1, 2 ** 16, 2 ** 16, 1, false] });
  out.push({ name: 'attentionForward B x NH x N x N overflows', op: 'attentionForward', expect: /^native attentionForward: B x NH x N x N = .* overflows/,
    args: () => [f32(60), null, f32(180), 2 ** 20, 2 ** 20, 1, 1, 1, false] });
  out.push({ name: 'attentionForward causal must be a boolean', op: 'attentionForward', expect: /^native attentionForward: argument 8 \(causal\) must be a boolean, received 1$/,
    args: () => [f32(60), f32(150), f32(180), 2, 5, 3, 2, 0.7, 1] });
  // a std::bad_alloc on pool threads (the per-thread score scratch of N = 2^22 query rows, ~6 TB)
  // becomes a JS error instead of terminating the process
  out.push({ name: 'attentionForward scratch allocation fails on every thread', op: 'attentionForward', expect: /^native attentionForward: out of memory/,
    args: () => [f32(2 ** 22), null, f32(3 * 2 ** 22), 1, 2 ** 22, 1, 1, 1, false] });
  // fuzz/native finding: HD = 0 with no probs buffer is valid (empty qkv and out) but ran B x NH x N^2
  // score loops over nothing (here 2^40 heads: hours); it now returns at once
  out.push({ name: 'attentionForward HD = 0 and no probs does no work', op: 'attentionForward', expect: /^$/,
    args: () => [f32(0), null, f32(0), 2 ** 20, 1, 2 ** 20, 0, 1, false] });
  out.push({ name: 'add with too few arguments', op: 'add', expect: /^native add: expected 4 arguments, received 3$/,
    args: () => [f32(9), f32(9), f32(9)] });
  out.push({ name: 'setThreads 0', op: 'setThreads', expect: /^Expected an integer >= 1 for setThreads\(n\) but received 0/, args: () => [0] });
  out.push({ name: 'setThreads 1.5', op: 'setThreads', expect: /^Expected an integer >= 1 for setThreads\(n\) but received 1.5/, args: () => [1.5] });
  return out;
}

const CHILD = 'VITKIT_BOUNDS_CHILD';

if (process.env[CHILD]) {
  // child: run every case, one JSON line each; a crash stops the output at the case that crashed
  const { getBackend } = await import('../../src/backend/index.js');
  const { VitkitError } = await import('../../src/errors.js');
  const be = getBackend('native') as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const c of cases()) {
    process.stdout.write(JSON.stringify({ start: c.name }) + '\n');
    let result: { name: string; threw: boolean; vitkit: boolean; message: string };
    try {
      be[c.op]!(...c.args());
      result = { name: c.name, threw: false, vitkit: false, message: '' };
    } catch (e) {
      result = { name: c.name, threw: true, vitkit: e instanceof VitkitError, message: (e as Error).message };
    }
    process.stdout.write(JSON.stringify(result) + '\n');
  }
  be['setThreads']!(2);
} else {
  test('every native entry point rejects bad sizes, integers and buffers with a VitkitError (child process)', () => {
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url)], {
      env: { ...process.env, [CHILD]: '1', VITKIT_THREADS: '2' }, encoding: 'utf8', timeout: 60_000, maxBuffer: 64 << 20,
    });
    const lines = r.stdout.split('\n').filter((l) => l).map((l) => JSON.parse(l) as Record<string, unknown>);
    const last = lines[lines.length - 1];
    assert.ok(r.status === 0 && r.signal === null,
      `child ${r.signal ? `killed by ${r.signal}` : `exited ${r.status}`} during ${JSON.stringify(last?.['start'] ?? last?.['name'])}: ${r.stderr.slice(-2000)}`);
    const results = new Map(lines.filter((l) => 'threw' in l).map((l) => [l['name'] as string, l]));
    const all = cases();
    assert.equal(results.size, all.length, 'one result per case');
    for (const c of all) {
      const got = results.get(c.name)!;
      if (c.expect.source === '^$') {
        assert.equal(got['threw'], false, `${c.name}: a valid call threw ${got['message']}`);
        continue;
      }
      assert.equal(got['threw'], true, `${c.name}: did not throw`);
      assert.equal(got['vitkit'], true, `${c.name}: threw a non-VitkitError: ${got['message']}`);
      assert.match(got['message'] as string, c.expect, c.name);
      assert.ok(!(got['message'] as string).includes('\n'), `${c.name}: one line`);
    }
  });
}
