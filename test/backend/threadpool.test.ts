/**
 * The native thread pool under many small back-to-back parallel calls at 3, 4 and 8 threads with
 * chunk counts that change from call to call (issue 7: a worker late for a finished call could
 * claim a chunk of the next one: chunks ran twice, or the caller waited forever). Results are
 * checked exactly; the calls run in a child process with a time limit so a hang is a failure.
 * Also: the thread count can be changed at any time, through the API and through runCli.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { randn } from '../helpers.js';

const CHILD = 'VITKIT_POOL_CHILD';
const CALLS = Number(process.env['VITKIT_POOL_CALLS'] ?? 15000);

if (process.env[CHILD]) {
  const { getBackend } = await import('../../src/backend/index.js');
  const be = getBackend('native');
  const a = randn(1 << 14, 1), b = randn(1 << 14, 2);
  const sum = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) sum[i] = a[i]! + b[i]!; // float32 add: exact reference
  const bias = randn(64, 3);
  let seed = 12345;
  const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) >>> 0; return (seed >>> 8) % n; };
  // calls go out in bursts of 16 with no JS work between them (so that a worker still inside the
  // previous call meets the next one), then every output is checked
  const BURST = 16, MAXN = 16 * 12;
  const outs = Array.from({ length: BURST }, () => new Float32Array(MAXN + 1));
  const ns = new Int32Array(BURST), rs = new Int32Array(BURST), cs = new Int32Array(BURST);
  // layernormBackward cases and their 1-thread results
  be.threads!.setThreads(1);
  const lnb = [[17, 64 * 8], [33, 64 * 5], [40, 64 * 3 + 7], [20, 64 * 8 - 1]].flatMap((rc) => [rc, rc]).map(([R, C]) => {
    const x = randn(R! * C!, 6, 2), w = randn(C!, 7), g = randn(R! * C!, 8), bb = randn(C!, 9);
    const mean = new Float32Array(R!), rstd = new Float32Array(R!), y = new Float32Array(R! * C!);
    be.layernormForward(y, mean, rstd, x, w, bb, R!, C!, 1e-5);
    const dx1 = new Float32Array(R! * C!), dw1 = new Float32Array(C!), db1 = new Float32Array(C!);
    be.layernormBackward(dx1, dw1, db1, g, x, w, mean, rstd, R!, C!);
    return { R: R!, C: C!, x, w, g, mean, rstd, dx1, dw1, db1, dx: new Float32Array(R! * C!), dw: new Float32Array(C!), db: new Float32Array(C!) };
  });
  for (const T of [3, 4, 8]) {
    be.threads!.setThreads(T);
    if (be.threads!.getThreads() !== T) throw new Error(`setThreads(${T}) -> ${be.threads!.getThreads()}`);
    for (let it = 0; it < CALLS; it += BURST) {
      const kind = rnd(3);
      if (kind === 2) {
        // layernormBackward: two pool calls back to back inside one native call, a few row chunks
        // then up to 8 column blocks (more chunks than the call before: the issue-7 race); its
        // result does not depend on the thread count, so it must equal the 1-thread result exactly
        for (const lb of lnb) { lb.dx.fill(0); lb.dw.fill(0); lb.db.fill(0); }
        for (const lb of lnb) be.layernormBackward(lb.dx, lb.dw, lb.db, lb.g, lb.x, lb.w, lb.mean, lb.rstd, lb.R, lb.C);
        for (const lb of lnb) {
          for (const [got, want, what] of [[lb.dx, lb.dx1, 'dinp'], [lb.dw, lb.dw1, 'dweight'], [lb.db, lb.db1, 'dbias']] as const) {
            for (let i = 0; i < want.length; i++) {
              if (!Object.is(got[i], want[i])) throw new Error(`T=${T} call ${it}: layernormBackward ${lb.R}x${lb.C} ${what}[${i}] ${got[i]} vs ${want[i]} (1 thread)`);
            }
          }
        }
        continue;
      }
      for (let k = 0; k < BURST; k++) {
        ns[k] = 1 + rnd(MAXN);
        cs[k] = 1 + rnd(12);
        rs[k] = Math.floor(ns[k]! / cs[k]!) || 1;
        outs[k]!.fill(0);
      }
      if (kind === 0) {
        // add: (n + 15) / 16 blocks over min(T, blocks) chunks
        for (let k = 0; k < BURST; k++) be.add(outs[k]!, a, b, ns[k]!);
      } else {
        // biasAdd: rows in chunks of at least 16; each element must get the bias exactly once
        for (let k = 0; k < BURST; k++) be.biasAdd(outs[k]!, bias, rs[k]!, cs[k]!);
      }
      for (let k = 0; k < BURST; k++) {
        const out = outs[k]!;
        const n = kind === 0 ? ns[k]! : rs[k]! * cs[k]!;
        for (let i = 0; i < n; i++) {
          const want = kind === 0 ? sum[i]! : bias[i % cs[k]!]!;
          if (out[i] !== want) throw new Error(`T=${T} call ${it + k}: ${kind === 0 ? 'add' : 'biasAdd'} n=${n} wrong at ${i}: ${out[i]} vs ${want}`);
        }
        if (out[n] !== 0) throw new Error(`T=${T} call ${it + k}: wrote past ${n}`);
      }
    }
    process.stdout.write(`threads=${T}: ${CALLS} calls exact\n`);
  }
} else {
  test('thread pool: many small parallel calls at 3, 4 and 8 threads are exact and finish (child process)', () => {
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url)], {
      env: { ...process.env, [CHILD]: '1' }, encoding: 'utf8', timeout: 120_000,
    });
    assert.ok(r.signal === null, `child killed by ${r.signal} after ${Date.now() - t0} ms (a hang?): ${r.stdout}${r.stderr.slice(-1000)}`);
    assert.equal(r.status, 0, `${r.stdout}${r.stderr.slice(-2000)}`);
    assert.match(r.stdout, /threads=3: \d+ calls exact\nthreads=4: \d+ calls exact\nthreads=8: \d+ calls exact/);
  });

  test('setThreads takes effect on the loaded addon, and runCli --threads sets it', async () => {
    const { getBackend } = await import('../../src/backend/index.js');
    const { runCli } = await import('../../src/index.js');
    const be = getBackend('native'); // loaded before the CLI runs
    const before = be.threads!.getThreads();
    const log = console.log;
    try {
      be.threads!.setThreads(3);
      assert.equal(be.threads!.getThreads(), 3);
      console.log = () => {};
      for (const t of [1, 2]) {
        const code = await runCli(['node', 'vitkit', '--threads', String(t), 'info', 'vit_tiny_patch16_224', '--json']);
        assert.equal(code, 0);
        assert.equal(be.threads!.getThreads(), t, `after --threads ${t}`);
        assert.equal(getBackend().threads!.getThreads(), t);
      }
      // a malformed value changes nothing
      const err = console.error;
      console.error = () => {};
      try {
        assert.notEqual(await runCli(['node', 'vitkit', '--threads', '0', 'info', 'vit_tiny_patch16_224', '--json']), 0);
      } finally {
        console.error = err;
      }
      assert.equal(be.threads!.getThreads(), 2);
    } finally {
      console.log = log;
      be.threads!.setThreads(before);
    }
  });

  test('a native call still works after another one failed (no thread left in the pool state)', async () => {
    const { getBackend } = await import('../../src/backend/index.js');
    const { VitkitError } = await import('../../src/errors.js');
    const be = getBackend('native');
    const before = be.threads!.getThreads();
    try {
      be.threads!.setThreads(3);
      const n = 4096, a = randn(n, 4), b = randn(n, 5), out = new Float32Array(n);
      assert.throws(() => be.add(out, a, b, n + 1), VitkitError);
      be.add(out, a, b, n);
      for (let i = 0; i < n; i++) assert.equal(out[i], Math.fround(a[i]! + b[i]!));
    } finally {
      be.threads!.setThreads(before);
    }
  });
}
