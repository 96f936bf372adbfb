/**
 * Perceptual colour maps as 256-entry RGB lookup tables, generated from the degree-6 polynomial
 * fits of viridis and inferno published by Matt Zucker (https://www.shadertoy.com/view/WlfXRN,
 * CC0): c(t) = c0 + t (c1 + t (c2 + ... + t c6)) per channel, t in [0, 1]. The fits stay within
 * about 4/255 of the original maps (the largest errors at the ends) (van der Walt & Smith, CC0).
 */
import { VitkitError } from '../errors.js';

export type ColormapName = 'viridis' | 'inferno';
export const COLORMAPS: readonly ColormapName[] = ['viridis', 'inferno'];

/** [c0..c6] per channel (R, G, B) */
const COEFFS: Record<ColormapName, [number[], number[], number[]]> = {
  viridis: [
    [0.2777273272234177, 0.1050930431085774, -0.3308618287255563, -4.634230498983486, 6.228269936347081, 4.776384997670288, -5.435455855934631],
    [0.005407344544966578, 1.404613529898575, 0.214847559468213, -5.799100973351585, 14.17993336680509, -13.74514537774601, 4.645852612178535],
    [0.3340998053353061, 1.384590162594685, 0.09509516302823659, -19.33244095627987, 56.69055260068105, -65.35303263337234, 26.3124352495832],
  ],
  inferno: [
    [0.0002189403691192265, 0.1065134194856116, 11.60249308247187, -41.70399613139459, 77.162935699427, -71.31942824499214, 25.13112622477341],
    [0.001651004631001012, 0.5639564367884091, -3.972853965665698, 17.43639888205313, -33.40235894210092, 32.62606426397723, -12.24266895238567],
    [-0.01948089843709184, 3.932712388889277, -15.9423941062914, 44.35414519872813, -81.80730925738993, 73.20951985803202, -23.07032500287172],
  ],
};

const cache = new Map<ColormapName, Uint8Array>();

/** 256 x RGB bytes: entry i is the colour at t = i / 255. */
export function colormapLut(name: ColormapName): Uint8Array {
  const hit = cache.get(name);
  if (hit) return hit;
  const c = COEFFS[name];
  if (!c) throw new VitkitError(`Expected a colour map ${COLORMAPS.join(' or ')} but received ${JSON.stringify(name)}`);
  const lut = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    const t = i / 255;
    for (let ch = 0; ch < 3; ch++) {
      const k = c[ch]!;
      let v = k[6]!;
      for (let d = 5; d >= 0; d--) v = v * t + k[d]!;
      lut[i * 3 + ch] = Math.max(0, Math.min(255, Math.round(v * 255)));
    }
  }
  cache.set(name, lut);
  return lut;
}

/** The LUT index of a value in [0, 1] (clamped; NaN -> 0). */
export function lutIndex(t: number): number {
  if (!(t > 0)) return 0;
  if (t >= 1) return 255;
  return Math.round(t * 255);
}

/** Nearest LUT entry (squared RGB distance) to a colour: the inverse of the map, for tests and checks. */
export function invertColor(lut: Uint8Array, r: number, g: number, b: number): number {
  let best = 0;
  let bestD = Infinity;
  for (let i = 0; i < 256; i++) {
    const dr = lut[3 * i]! - r, dg = lut[3 * i + 1]! - g, db = lut[3 * i + 2]! - b;
    const d = dr * dr + dg * dg + db * db;
    if (d < bestD) { bestD = d; best = i; }
  }
  return best;
}
