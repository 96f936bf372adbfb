/**
 * Seeded randomness for the data pipeline. Every random draw is a pure function of
 * (--seed, epoch, batch index): the sample order of an epoch comes from `epochRng`, the
 * augmentation of a batch from `batchRng`. Nothing depends on which worker thread made a batch
 * or on how many batches came before, so a resumed run sees exactly the batches an
 * uninterrupted run would have seen.
 */

/** A mulberry32 generator whose whole state is one uint32 (`state`), so it can be saved and restored. */
export class Rng {
  state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** uniform in [0, 1) */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** uniform in [a, b) (Python's random.uniform) */
  uniform(a: number, b: number): number {
    return a + (b - a) * this.next();
  }

  /** integer in [lo, hi] inclusive (Python's random.randint) */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** standard normal (Box-Muller) */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Gamma(shape, 1), Marsaglia and Tsang */
  gamma(shape: number): number {
    if (shape < 1) {
      const u = this.next();
      return this.gamma(shape + 1) * Math.pow(u === 0 ? Number.MIN_VALUE : u, 1 / shape);
    }
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = this.normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = this.next();
      if (u < 1 - 0.0331 * x * x * x * x) return d * v;
      if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
    }
  }

  /** Beta(a, b) */
  beta(a: number, b: number): number {
    const x = this.gamma(a);
    const y = this.gamma(b);
    return x / (x + y);
  }
}

/** Mix integers into one well-spread uint32 (murmur3's finalizer over a running hash). */
export function hashSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    let k = Math.imul(p >>> 0, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) >>> 0;
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const ORDER = 1;
const AUGMENT = 2;
const SPLIT = 3;

/** The same generator as a plain function (`rand()` in [0, 1)): weight init, detection and tests draw from it. */
export function mulberry32(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.next();
}

/** The generator for the sample order of one epoch. */
export function epochRng(seed: number, epoch: number): Rng {
  return new Rng(hashSeed(seed, ORDER, epoch));
}

/** The generator for the augmentation (and mixup) of one batch. */
export function batchRng(seed: number, epoch: number, batch: number): Rng {
  return new Rng(hashSeed(seed, AUGMENT, epoch, batch));
}

/** The generator for a validation split. */
export function splitRng(seed: number, cls: number): Rng {
  return new Rng(hashSeed(seed, SPLIT, cls));
}

/** Fisher-Yates shuffle of `items` in place (from the end: j = floor(next() * (i + 1))): the toolkit's one shuffler. */
export function shuffleInPlace<T extends { length: number; [i: number]: number }>(items: T, rng: Rng): T {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    const t = items[i]!;
    items[i] = items[j]!;
    items[j] = t;
  }
  return items;
}

/** Fisher-Yates shuffle of 0..n-1. */
export function permutation(n: number, rng: Rng): Int32Array {
  const p = new Int32Array(n); // (n)
  for (let i = 0; i < n; i++) p[i] = i;
  return shuffleInPlace(p, rng);
}
