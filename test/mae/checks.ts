/** The refs README's training checks for the MAE case, shared by the model-level and the CLI tests. */
import assert from 'node:assert/strict';
import { maxAbs } from '../helpers.js';
import type { SafetensorsFile } from '../../src/io/safetensors.js';

/**
 * shared/refs/README.md's after-3 rule: noise-gradient elements (|g| <= 1e-7 x the tensor's max |g|:
 * float32 rounding level) within 3 lr; every other element within 1e-5 + min(3 lr, 3 lr eps tau / (|g| + eps)^2),
 * tau = 3e-7 x the tensor's max |g|.
 */
export function checkAfter3Rule(names: readonly string[], param: (n: string) => Float32Array, ref: SafetensorsFile, lr: number, eps: number): string {
  let worst = { name: '', err: 0 }, noise = 0;
  for (const name of names) {
    const p = param(name), r = ref.f32(`after3.${name}`).data, g = ref.f32(`grad.${name}`).data;
    const gmax = maxAbs(g), tau = 3e-7 * gmax;
    for (let i = 0; i < r.length; i++) {
      const e = Math.abs(p[i]! - r[i]!), ag = Math.abs(g[i]!);
      if (ag <= 1e-7 * gmax) { noise++; assert.ok(e <= 3 * lr, `after3.${name}[${i}] (noise gradient ${g[i]}): ${e} > 3 lr`); continue; }
      const bound = 1e-5 + Math.min(3 * lr, (3 * lr * eps * tau) / (ag + eps) ** 2);
      assert.ok(e <= bound, `after3.${name}[${i}]: ${e} > ${bound} (grad ${g[i]})`);
      if (e > worst.err) worst = { name, err: e };
    }
  }
  return `worst after3 ${worst.name} ${worst.err.toExponential(2)}, noise-gradient elements ${noise}`;
}

export function checkGrads(names: readonly string[], grad: (n: string) => Float32Array, ref: SafetensorsFile): string {
  let worst = { name: '', rel: 0 };
  for (const name of names) {
    const g = grad(name), r = ref.f32(`grad.${name}`).data, scale = maxAbs(r);
    let err = 0;
    for (let i = 0; i < r.length; i++) err = Math.max(err, Math.abs(g[i]! - r[i]!));
    assert.ok(err <= 1e-4 * scale, `grad.${name}: max abs error ${err} > 1e-4 x ${scale}`);
    if (err / scale > worst.rel) worst = { name, rel: err / scale };
  }
  return `worst grad ${worst.name} ${worst.rel.toExponential(2)} x max|ref|`;
}

