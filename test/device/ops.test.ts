/**
 * The training ops of the cpu device (HostDevice over the native backend) beyond Ops<T>: the
 * soft-target cross-entropy (timm's SoftTargetCrossEntropy, torch's probability-target smoothing)
 * against a double-precision hand computation, and argmaxRows against torch.argmax's rule.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getBackend } from '../../src/backend/index.js';
import { HostDevice } from '../../src/backend/host_device.js';
import { randn } from '../helpers.js';

const dev = new HostDevice(getBackend('native'));

function upload(a: Float32Array | Int32Array) {
  const t = dev.alloc([a.length], a instanceof Int32Array ? 'i32' : 'f32');
  dev.write(t, a);
  return t;
}

for (const [B, K, eps] of [[3, 10, 0], [3, 1000, 0.1], [8, 10, 0.1]] as const) {
  test(`cpu device soft-target cross-entropy B=${B} K=${K} smoothing ${eps} = the double computation`, async () => {
    const logits = randn(B * K, 300 + K, 4), t = randn(B * K, 301 + K).map(Math.abs); // (B, K), (B, K)
    for (let b = 0; b < B; b++) { let s = 0; for (let k = 0; k < K; k++) s += t[b * K + k]!; for (let k = 0; k < K; k++) t[b * K + k]! /= s; }
    let want = 0;
    const wantD = new Float64Array(B * K); // (B, K)
    for (let b = 0; b < B; b++) {
      const row = Array.from(logits.subarray(b * K, (b + 1) * K)), m = Math.max(...row);
      const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
      for (let k = 0; k < K; k++) {
        const q = (1 - eps) * t[b * K + k]! + eps / K;
        want -= q * (row[k]! - lse) / B;
        wantD[b * K + k] = (Math.exp(row[k]! - lse) - q) / B; // sum_k q = 1
      }
    }
    const loss = dev.alloc([1]), dl = dev.alloc([B, K]), tl = upload(logits), tt = upload(t);
    dev.softCrossEntropyForward(loss, tl, tt, B, K, eps);
    dev.softCrossEntropyBackward(dl, tl, tt, B, K, eps);
    const l = (await dev.read(loss))[0]!;
    assert.ok(Math.abs(l - want) <= 1e-6 * Math.max(1, want), `loss ${l} vs ${want}`);
    const g = await dev.read(dl);
    let e = 0;
    for (let i = 0; i < B * K; i++) e = Math.max(e, Math.abs(g[i]! - wantD[i]!));
    assert.ok(e <= 1e-7, `dlogits error ${e}`);
  });
}

test('cpu device argmaxRows: the first maximum of each row; a short tensor is named', async () => {
  const x = Float32Array.from([1, 5, 5, 2, /**/ -3, -1, -2, -1, /**/ 0, 0, 0, 0]); // (3, 4)
  const out = dev.alloc([3], 'i32');
  dev.argmaxRows(out, upload(x), 3, 4);
  assert.deepEqual(await dev.readInt(out), Int32Array.from([1, 1, 0]));
  assert.throws(() => dev.argmaxRows(dev.alloc([2], 'i32'), upload(x), 3, 4), /argmaxRows: expected out of at least 3 and inp of at least 12 elements but received 2 and 12/);
  assert.throws(() => dev.argmaxRows(dev.alloc([3]), upload(x), 3, 4), /argmaxRows: out must be an i32 tensor but is f32/);
});
