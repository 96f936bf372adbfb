/**
 * Display of high-bit-depth grayscale: the modality LUT (Rescale Slope / Intercept) and the linear VOI
 * window of DICOM PS3.3 C.11.2.1.2.1, output range [0, 1]:
 *   x <= c - 0.5 - (w - 1) / 2        -> 0
 *   x >  c - 0.5 + (w - 1) / 2        -> 1
 *   else  ((x - (c - 0.5)) / (w - 1) + 0.5)
 * (w >= 1; w = 1 is a threshold at c - 0.5). MONOCHROME1 is inverted after the window (1 - y).
 */
import { UsageError, VitkitError, expected } from '../errors.js';
import type { StoredArray } from './dicom.js';

/** --window: a center/width pair, the image's own range, or (undefined) the file's window. */
export type WindowSpec = { center: number; width: number; name?: string } | 'minmax';

/** Named CT windows (center, width) in Hounsfield units. */
export const WINDOW_PRESETS: Readonly<Record<string, { center: number; width: number }>> = {
  'ct-soft-tissue': { center: 40, width: 400 },
  'ct-lung': { center: -600, width: 1500 },
  'ct-bone': { center: 400, width: 1800 },
  'ct-brain': { center: 40, width: 80 },
};

/** Parse `c,w`, `minmax` or a preset name (a UsageError, exit 2, otherwise). */
export function parseWindow(s: string): WindowSpec {
  const v = s.trim();
  if (v === 'minmax') return 'minmax';
  const p = WINDOW_PRESETS[v];
  if (p) return { ...p, name: v };
  const parts = v.split(',');
  const nums = parts.map((x) => Number(x));
  if (parts.length !== 2 || parts.some((x) => x.trim() === '') || nums.some((x) => !Number.isFinite(x))) {
    throw new UsageError(`Expected --window as center,width (e.g. 40,400), minmax or one of ${Object.keys(WINDOW_PRESETS).join(', ')} but received ${JSON.stringify(s)}`);
  }
  if (!(nums[1]! >= 1)) throw new UsageError(`Expected a window width >= 1 in --window but received ${JSON.stringify(s)} (a zero-width window maps nothing)`);
  return { center: nums[0]!, width: nums[1]! };
}

/** The modality LUT of one stored value: slope * stored + intercept in float64, rounded to float32. */
function lutValue(stored: number, slope: number, intercept: number): number {
  return Math.fround(stored * slope + intercept);
}

/** Modality LUT: slope * stored + intercept (float64 math, float32 result). (N,) */
export function modalityLut(stored: StoredArray, slope: number, intercept: number): Float32Array {
  const out = new Float32Array(stored.length); // (N,)
  for (let i = 0; i < stored.length; i++) out[i] = lutValue(stored[i]!, slope, intercept);
  return out;
}

/** The modality LUT folded into valueRange / applyWindow: x holds stored values, each read as lutValue(x[i]). */
export interface Lut {
  slope: number;
  intercept: number;
}

/** Pixels left out: mask[i] = 1, or x[i] === padding (a stored value: Pixel Padding Value). */
interface Exclude {
  mask?: Uint8Array;
  padding?: number | null;
}

/** The min / max of x (through `lut` when given) over the pixels not left out. */
export function valueRange(x: Float32Array | StoredArray, opts: Exclude & { lut?: Lut } = {}): { min: number; max: number } {
  const { mask, lut } = opts;
  const padding = opts.padding ?? null;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < x.length; i++) {
    if (mask && mask[i]) continue;
    const v = x[i]!;
    if (v === padding) continue;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (min > max) return { min: 0, max: 0 };
  if (!lut) return { min, max };
  // float32 rounding is monotonic: the LUT's extremes are the LUT of the stored extremes (swapped when slope < 0)
  const a = lutValue(min, lut.slope, lut.intercept);
  const b = lutValue(max, lut.slope, lut.intercept);
  return { min: Math.min(a, b), max: Math.max(a, b) };
}

/** The (center, width) of PS3.3's linear function that maps [min, max] exactly onto [0, 1]. */
export function minmaxWindow(min: number, max: number): { center: number; width: number } {
  const width = max - min + 1;
  return { center: min + 0.5 + (width - 1) / 2, width };
}

/**
 * PS3.3 C.11.2.1.2.1 linear VOI LUT of x to [0, 1]; with `lut`, x holds stored values and the
 * modality LUT is applied on the way (one pass, no (N,) intermediate: what keeps decode + window of a
 * 512x512 slice under 10 ms). `invert` (MONOCHROME1) gives 1 - y; pixels left out (padding) give 0
 * after inversion (the darkest value). (N,)
 */
export function applyWindow(x: Float32Array | StoredArray, center: number, width: number, label: string, opts: Exclude & { invert?: boolean; lut?: Lut; out?: Float32Array } = {}): Float32Array {
  if (!Number.isFinite(center) || !Number.isFinite(width)) throw expected('a finite window center and width', `the window of ${label}`, `${center},${width}`);
  if (!(width >= 1)) throw new VitkitError(`Expected a window width >= 1 for ${label} but received ${width} (center ${center}): a zero-width window maps nothing`);
  const out = opts.out ?? new Float32Array(x.length); // (N,)
  const lo = center - 0.5 - (width - 1) / 2;
  const hi = center - 0.5 + (width - 1) / 2;
  const c0 = center - 0.5;
  const wm1 = width - 1;
  const invert = opts.invert ?? false;
  const mask = opts.mask;
  const padding = opts.padding ?? null;
  const lut = opts.lut;
  const slope = lut?.slope ?? 1;
  const intercept = lut?.intercept ?? 0;
  for (let i = 0; i < x.length; i++) {
    const s = x[i]!;
    const v = lut ? lutValue(s, slope, intercept) : s;
    let y: number;
    if (v <= lo) y = 0;
    else if (v > hi) y = 1;
    else y = (v - c0) / wm1 + 0.5; // wm1 > 0 here: with w = 1, lo = hi
    if (invert) y = 1 - y;
    if ((mask && mask[i]) || s === padding) y = 0;
    out[i] = y;
  }
  return out;
}
