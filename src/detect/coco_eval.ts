/**
 * COCO box evaluation exactly as pycocotools' COCOeval(iouType='bbox') computes it: evaluate()
 * (per image and category: detections sorted by score, stable, at most maxDets[-1]; greedy matching
 * per IoU threshold preferring non-ignored ground truth; crowd ground truth matched any number of
 * times with IoU = intersection / detection area; ground truth outside the area range, and crowd,
 * ignored; unmatched detections outside the range ignored), accumulate() (101-point interpolated
 * precision, recall at each maxDets, −1 where a category/area has no non-ignored ground truth) and
 * summarize() (the 12 numbers, means over the entries > −1, −1 when there are none).
 * Ground-truth areas come from each annotation's `area`; detection areas are w·h (loadRes).
 */
import { VitkitError } from '../errors.js';

export interface CocoGtAnnotation {
  id: number;
  image_id: number;
  category_id: number;
  /** x, y, w, h in pixels */
  bbox: [number, number, number, number];
  area: number;
  iscrowd?: number | boolean;
}

export interface CocoGt {
  images: { id: number }[];
  annotations: CocoGtAnnotation[];
  categories: { id: number }[];
}

export interface CocoDetection {
  image_id: number;
  category_id: number;
  bbox: [number, number, number, number];
  score: number;
}

/** summarize()'s 12 numbers, in its order */
export interface CocoStats {
  AP: number; AP50: number; AP75: number; APs: number; APm: number; APl: number;
  AR1: number; AR10: number; AR100: number; ARs: number; ARm: number; ARl: number;
}
export const COCO_STAT_KEYS = ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR1', 'AR10', 'AR100', 'ARs', 'ARm', 'ARl'] as const;

/** numpy.linspace(start, stop, num) */
function linspace(a: number, b: number, n: number): number[] {
  const step = (b - a) / (n - 1);
  const out = Array.from({ length: n }, (_, i) => i * step + a);
  out[n - 1] = b;
  return out;
}

export const IOU_THRS = linspace(0.5, 0.95, 10);
export const REC_THRS = linspace(0, 1, 101);
export const MAX_DETS = [1, 10, 100] as const;
export const AREA_RNG: readonly [number, number][] = [[0, 1e10], [0, 32 ** 2], [32 ** 2, 96 ** 2], [96 ** 2, 1e10]];
const SPACING_1 = 2.220446049250313e-16; // np.spacing(1)

interface Gt { id: number; bbox: number[]; area: number; crowd: boolean }
interface Dt { id: number; bbox: number[]; area: number; score: number }

/** stable argsort by key ascending (numpy kind='mergesort') */
function stableOrder<T>(xs: readonly T[], key: (x: T) => number): number[] {
  return xs.map((_, i) => i).sort((a, b) => key(xs[a]!) - key(xs[b]!) || a - b);
}

/** maskUtils.iou for boxes (x, y, w, h): (D, G); crowd ground truth: intersection / detection area */
function bboxIou(d: Dt[], g: Gt[]): Float64Array {
  const out = new Float64Array(d.length * g.length); // (D, G)
  for (let i = 0; i < d.length; i++) {
    const [dx, dy, dw, dh] = d[i]!.bbox as [number, number, number, number];
    const da = dw * dh;
    for (let j = 0; j < g.length; j++) {
      const [gx, gy, gw, gh] = g[j]!.bbox as [number, number, number, number];
      const w = Math.min(dx + dw, gx + gw) - Math.max(dx, gx);
      if (w <= 0) continue;
      const h = Math.min(dy + dh, gy + gh) - Math.max(dy, gy);
      if (h <= 0) continue;
      const inter = w * h, u = g[j]!.crowd ? da : da + gw * gh - inter;
      out[i * g.length + j] = inter / u;
    }
  }
  return out;
}

interface EvalImg {
  dtScores: number[];
  /** (T, D) matched gt id (0 = none) */
  dtMatches: Float64Array;
  /** (T, D) */
  dtIgnore: Uint8Array;
  gtIgnore: Uint8Array;
  D: number;
}

function checkBox(b: unknown, what: string): [number, number, number, number] {
  if (!Array.isArray(b) || b.length !== 4 || !b.every((v) => typeof v === 'number' && Number.isFinite(v))) {
    throw new VitkitError(`${what}: expected bbox [x, y, w, h] of 4 finite numbers but received ${JSON.stringify(b)}`);
  }
  return b as [number, number, number, number];
}

/** COCOeval(gt, loadRes(dt), 'bbox').evaluate(); accumulate(); summarize() -> stats */
export function cocoEvaluate(gt: CocoGt, dets: readonly CocoDetection[]): CocoStats {
  const imgIds = [...new Set(gt.images.map((i) => i.id))].sort((a, b) => a - b);
  const catIds = [...new Set(gt.categories.map((c) => c.id))].sort((a, b) => a - b);
  const imgSet = new Set(imgIds), catSet = new Set(catIds);
  const key = (i: number, c: number) => `${i}:${c}`;
  const gts = new Map<string, Gt[]>(), dts = new Map<string, Dt[]>();
  // pycocotools orders annotations by image (p.imgIds order), then file order
  const byImg = new Map<number, CocoGtAnnotation[]>();
  gt.annotations.forEach((a, n) => {
    if (!imgSet.has(a.image_id)) throw new VitkitError(`annotations[${n}] (id ${a.id}) has image_id ${a.image_id}, which is not among the images`);
    checkBox(a.bbox, `annotations[${n}] (id ${a.id})`);
    if (!byImg.has(a.image_id)) byImg.set(a.image_id, []);
    byImg.get(a.image_id)!.push(a);
  });
  for (const i of imgIds) {
    for (const a of byImg.get(i) ?? []) {
      if (!catSet.has(a.category_id)) continue;
      const k = key(a.image_id, a.category_id);
      if (!gts.has(k)) gts.set(k, []);
      gts.get(k)!.push({ id: a.id, bbox: a.bbox, area: a.area, crowd: !!a.iscrowd });
    }
  }
  dets.forEach((d, n) => {
    if (!imgSet.has(d.image_id)) throw new VitkitError(`detections[${n}] has image_id ${d.image_id}, which is not among the ground truth's images (pycocotools: "Results do not correspond to current coco set")`);
    const b = checkBox(d.bbox, `detections[${n}]`);
    if (typeof d.score !== 'number' || Number.isNaN(d.score)) throw new VitkitError(`detections[${n}]: expected a numeric score but received ${JSON.stringify(d.score)}`);
    if (!catSet.has(d.category_id)) return;
    const k = key(d.image_id, d.category_id);
    if (!dts.has(k)) dts.set(k, []);
    dts.get(k)!.push({ id: n + 1, bbox: b, area: b[2] * b[3], score: d.score });
  });
  const T = IOU_THRS.length, maxDet = MAX_DETS[MAX_DETS.length - 1];
  const evalImgs: (EvalImg | null)[] = []; // [cat][area][img]
  for (const c of catIds) {
    const ious = new Map<number, Float64Array>();
    for (const aRng of AREA_RNG) {
      for (const i of imgIds) {
        const g0 = gts.get(key(i, c)) ?? [], d0 = dts.get(key(i, c)) ?? [];
        if (g0.length === 0 && d0.length === 0) { evalImgs.push(null); continue; }
        const ign = g0.map((g) => (g.crowd || g.area < aRng[0] || g.area > aRng[1] ? 1 : 0));
        const gOrder = stableOrder(ign, (v) => v);
        const g = gOrder.map((j) => g0[j]!), gtIg = Uint8Array.from(gOrder, (j) => ign[j]!);
        const dSorted = stableOrder(d0, (d) => -d.score).map((j) => d0[j]!);
        const d = dSorted.slice(0, maxDet);
        // computeIoU: dt sorted by score, truncated to maxDets[-1], against gt in file order
        let iouAll = ious.get(i);
        if (!iouAll) { iouAll = bboxIou(d, g0); ious.set(i, iouAll); }
        const G = g.length, D = d.length;
        const gtm = new Float64Array(T * G), dtm = new Float64Array(T * D), dtIg = new Uint8Array(T * D);
        if (G > 0 && D > 0) {
          for (let t = 0; t < T; t++) {
            for (let di = 0; di < D; di++) {
              let iou = Math.min(IOU_THRS[t]!, 1 - 1e-10), m = -1;
              for (let gi = 0; gi < G; gi++) {
                if (gtm[t * G + gi]! > 0 && !g[gi]!.crowd) continue;
                if (m > -1 && gtIg[m] === 0 && gtIg[gi] === 1) break;
                const v = iouAll[di * g0.length + gOrder[gi]!]!;
                if (v < iou) continue;
                iou = v; m = gi;
              }
              if (m === -1) continue;
              dtIg[t * D + di] = gtIg[m]!;
              dtm[t * D + di] = g[m]!.id;
              gtm[t * G + m] = d[di]!.id;
            }
          }
        }
        for (let t = 0; t < T; t++) {
          for (let di = 0; di < D; di++) {
            const outside = d[di]!.area < aRng[0] || d[di]!.area > aRng[1];
            if (dtm[t * D + di] === 0 && outside) dtIg[t * D + di] = 1;
          }
        }
        evalImgs.push({ dtScores: d.map((x) => x.score), dtMatches: dtm, dtIgnore: dtIg, gtIgnore: gtIg, D });
      }
    }
  }
  // accumulate
  const R = REC_THRS.length, K = catIds.length, A = AREA_RNG.length, M = MAX_DETS.length, I = imgIds.length;
  const precision = new Float64Array(T * R * K * A * M).fill(-1);
  const recall = new Float64Array(T * K * A * M).fill(-1);
  const pIdx = (t: number, r: number, k: number, a: number, m: number) => (((t * R + r) * K + k) * A + a) * M + m;
  const rIdx = (t: number, k: number, a: number, m: number) => ((t * K + k) * A + a) * M + m;
  for (let k = 0; k < K; k++) {
    for (let a = 0; a < A; a++) {
      for (let mi = 0; mi < M; mi++) {
        const md = MAX_DETS[mi]!;
        const E = Array.from({ length: I }, (_, i) => evalImgs[(k * A + a) * I + i]!).filter((e) => e !== null);
        if (E.length === 0) continue;
        const scores: number[] = [], cols: [EvalImg, number][] = [];
        for (const e of E) for (let j = 0; j < Math.min(md, e.D); j++) { scores.push(e.dtScores[j]!); cols.push([e, j]); }
        const order = stableOrder(scores, (s) => -s);
        let npig = 0;
        for (const e of E) for (const v of e.gtIgnore) if (v === 0) npig++;
        if (npig === 0) continue;
        const nd = order.length;
        for (let t = 0; t < T; t++) {
          const rc = new Float64Array(nd), pr = new Float64Array(nd);
          let tp = 0, fp = 0;
          for (let n = 0; n < nd; n++) {
            const [e, j] = cols[order[n]!]!;
            const m = e.dtMatches[t * e.D + j]!, ig = e.dtIgnore[t * e.D + j]!;
            if (!ig) { if (m !== 0) tp++; else fp++; }
            rc[n] = tp / npig;
            pr[n] = tp / (fp + tp + SPACING_1);
          }
          recall[rIdx(t, k, a, mi)] = nd > 0 ? rc[nd - 1]! : 0;
          for (let n = nd - 1; n > 0; n--) if (pr[n]! > pr[n - 1]!) pr[n - 1] = pr[n]!;
          // searchsorted(rc, recThrs, 'left'); entries past the last detection stay 0
          let pi = 0;
          for (let r = 0; r < R; r++) {
            while (pi < nd && rc[pi]! < REC_THRS[r]!) pi++;
            if (pi >= nd) { for (let r2 = r; r2 < R; r2++) precision[pIdx(t, r2, k, a, mi)] = 0; break; }
            precision[pIdx(t, r, k, a, mi)] = pr[pi]!;
          }
        }
      }
    }
  }
  // summarize
  const summ = (ap: boolean, iouThr: number | null, a: number, md: number): number => {
    const mi = MAX_DETS.indexOf(md as 1 | 10 | 100);
    let sum = 0, n = 0;
    for (let t = 0; t < T; t++) {
      if (iouThr !== null && IOU_THRS[t] !== iouThr) continue;
      for (let k = 0; k < K; k++) {
        if (ap) {
          for (let r = 0; r < R; r++) { const v = precision[pIdx(t, r, k, a, mi)]!; if (v > -1) { sum += v; n++; } }
        } else {
          const v = recall[rIdx(t, k, a, mi)]!; if (v > -1) { sum += v; n++; }
        }
      }
    }
    return n === 0 ? -1 : sum / n;
  };
  return {
    AP: summ(true, null, 0, 100), AP50: summ(true, 0.5, 0, 100), AP75: summ(true, 0.75, 0, 100),
    APs: summ(true, null, 1, 100), APm: summ(true, null, 2, 100), APl: summ(true, null, 3, 100),
    AR1: summ(false, null, 0, 1), AR10: summ(false, null, 0, 10), AR100: summ(false, null, 0, 100),
    ARs: summ(false, null, 1, 100), ARm: summ(false, null, 2, 100), ARl: summ(false, null, 3, 100),
  };
}
