/**
 * The refs README's after-3 rule (../shared/refs/README.md, openclip_clip/), one implementation for every
 * training case: g is the element's step-1 reference gradient, τ = 3e-7 × the tensor's max |g|;
 * noise-gradient elements (|g| ≤ 1e-7 × max |g|) within 3·lr, every other element within
 * 1e-5 + min(3·lr, 3·lr·eps·τ / (|g| + eps)²) — AdamW's step lr·g/(|g|+eps) amplifies a float32
 * gradient error of τ by lr·eps/(|g|+eps)² near |g| ≈ eps, three steps.
 */
export interface After3Result {
  /** worst |got - want| over the non-noise elements, and that element's bound */
  worst: number;
  worstBound: number;
  noise: number;
  /** the first failures, one line each */
  failures: string[];
}

export function after3Bound(g: number, gmax: number, lr: number, eps: number): number {
  if (Math.abs(g) <= 1e-7 * gmax) return 3 * lr;
  const tau = 3e-7 * gmax;
  return 1e-5 + Math.min(3 * lr, (3 * lr * eps * tau) / (Math.abs(g) + eps) ** 2);
}

/** Check one tensor's after-3 values against the rule; accumulates into `acc`. */
export function checkAfter3Tensor(acc: After3Result, name: string, got: ArrayLike<number>, want: ArrayLike<number>,
  g: ArrayLike<number>, lr: number, eps: number): void {
  let gmax = 0;
  for (let i = 0; i < g.length; i++) gmax = Math.max(gmax, Math.abs(g[i]!));
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i]! - want[i]!), b = after3Bound(g[i]!, gmax, lr, eps);
    if (Math.abs(g[i]!) <= 1e-7 * gmax) acc.noise++;
    else if (d > acc.worst) { acc.worst = d; acc.worstBound = b; }
    if (!(d <= b) && acc.failures.length < 10) acc.failures.push(`after3 ${name}[${i}]: ${got[i]} vs ${want[i]} (|diff| ${d.toExponential(3)} > ${b.toExponential(3)}, step-1 grad ${g[i]})`);
  }
}

export const newAfter3 = (): After3Result => ({ worst: 0, worstBound: 0, noise: 0, failures: [] });
