/** Finite-difference helpers shared by the gradient checks. */

/** Richardson-extrapolated central difference of f with respect to v[i] */
export function numeric(v: Float32Array, i: number, f: () => number, h: number): number {
  const p0 = v[i]!;
  const central = (step: number) => {
    v[i] = p0 + step; const up = v[i]!; const lp = f();
    v[i] = p0 - step; const dn = v[i]!; const lm = f();
    v[i] = p0;
    return (lp - lm) / (up - dn);
  };
  return (4 * central(h / 2) - central(h)) / 3;
}

export function pick(n: number, count: number, r: () => number, always: number): number[] {
  const s = new Set<number>([always]);
  while (s.size < Math.min(n, count + 1)) s.add(Math.floor(r() * n));
  return [...s];
}

export function argmaxAbs(v: Float32Array): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (Math.abs(v[i]!) > Math.abs(v[best]!)) best = i;
  return best;
}
