/**
 * Box arithmetic of DETR / YOLOS (`util/box_ops.py`): (cx, cy, w, h) <-> (x0, y0, x1, y1), IoU and
 * generalized IoU, with the backward of GIoU for the set criterion. Computed in float64.
 * At ties of torch.maximum / torch.minimum the gradient is split in half, as torch's autograd does;
 * clamp(min=0) passes the gradient where its input is >= 0.
 */

/** (cx, cy, w, h) -> (x0, y0, x1, y1): box_cxcywh_to_xyxy, n boxes (n, 4) */
export function cxcywhToXyxy(b: ArrayLike<number>, n = b.length / 4): Float64Array {
  const out = new Float64Array(n * 4); // (n, 4)
  for (let i = 0; i < n; i++) {
    const cx = b[4 * i]!, cy = b[4 * i + 1]!, w = b[4 * i + 2]!, h = b[4 * i + 3]!;
    out[4 * i] = cx - 0.5 * w; out[4 * i + 1] = cy - 0.5 * h; out[4 * i + 2] = cx + 0.5 * w; out[4 * i + 3] = cy + 0.5 * h;
  }
  return out;
}

/** (x0, y0, x1, y1) -> (cx, cy, w, h): box_xyxy_to_cxcywh, n boxes (n, 4) */
export function xyxyToCxcywh(b: ArrayLike<number>, n = b.length / 4): Float64Array {
  const out = new Float64Array(n * 4); // (n, 4)
  for (let i = 0; i < n; i++) {
    const x0 = b[4 * i]!, y0 = b[4 * i + 1]!, x1 = b[4 * i + 2]!, y1 = b[4 * i + 3]!;
    out[4 * i] = (x0 + x1) / 2; out[4 * i + 1] = (y0 + y1) / 2; out[4 * i + 2] = x1 - x0; out[4 * i + 3] = y1 - y0;
  }
  return out;
}

/** IoU and union of boxes a[i] and b[j] (xyxy), as box_iou */
function iouUnion(a: ArrayLike<number>, i: number, b: ArrayLike<number>, j: number): { iou: number; union: number } {
  const ax0 = a[4 * i]!, ay0 = a[4 * i + 1]!, ax1 = a[4 * i + 2]!, ay1 = a[4 * i + 3]!;
  const bx0 = b[4 * j]!, by0 = b[4 * j + 1]!, bx1 = b[4 * j + 2]!, by1 = b[4 * j + 3]!;
  const areaA = (ax1 - ax0) * (ay1 - ay0), areaB = (bx1 - bx0) * (by1 - by0);
  const iw = Math.max(Math.min(ax1, bx1) - Math.max(ax0, bx0), 0), ih = Math.max(Math.min(ay1, by1) - Math.max(ay0, by0), 0);
  const inter = iw * ih, union = areaA + areaB - inter;
  return { iou: inter / union, union };
}

/** pairwise IoU (n, m) of xyxy boxes a (n, 4) and b (m, 4): box_iou */
export function boxIou(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  const n = a.length / 4, m = b.length / 4, out = new Float64Array(n * m); // (n, m)
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) out[i * m + j] = iouUnion(a, i, b, j).iou;
  return out;
}

/** pairwise generalized IoU (n, m) of xyxy boxes a (n, 4) and b (m, 4): generalized_box_iou */
export function generalizedBoxIou(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  const n = a.length / 4, m = b.length / 4, out = new Float64Array(n * m); // (n, m)
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      const { iou, union } = iouUnion(a, i, b, j);
      const ew = Math.max(Math.max(a[4 * i + 2]!, b[4 * j + 2]!) - Math.min(a[4 * i]!, b[4 * j]!), 0);
      const eh = Math.max(Math.max(a[4 * i + 3]!, b[4 * j + 3]!) - Math.min(a[4 * i + 1]!, b[4 * j + 1]!), 0);
      const area = ew * eh;
      out[i * m + j] = iou - (area - union) / area;
    }
  }
  return out;
}

/** d max(p, q) / dp as torch: 1 above, 1/2 at a tie, 0 below */
const above = (p: number, q: number) => (p > q ? 1 : p === q ? 0.5 : 0);

/**
 * GIoU of one pair of xyxy boxes a and b and its gradient w.r.t. a (x0, y0, x1, y1) (b is constant):
 * giou = inter / U - (E - U) / E, U = area(a) + area(b) - inter, E the enclosing box's area.
 */
export function giouPairGrad(a: ArrayLike<number>, b: ArrayLike<number>): { giou: number; grad: [number, number, number, number] } {
  const [ax0, ay0, ax1, ay1] = [a[0]!, a[1]!, a[2]!, a[3]!];
  const [bx0, by0, bx1, by1] = [b[0]!, b[1]!, b[2]!, b[3]!];
  const aw = ax1 - ax0, ah = ay1 - ay0;
  const areaA = aw * ah, areaB = (bx1 - bx0) * (by1 - by0);
  const iwr = Math.min(ax1, bx1) - Math.max(ax0, bx0), ihr = Math.min(ay1, by1) - Math.max(ay0, by0);
  const iw = Math.max(iwr, 0), ih = Math.max(ihr, 0);
  const inter = iw * ih, U = areaA + areaB - inter;
  const ewr = Math.max(ax1, bx1) - Math.min(ax0, bx0), ehr = Math.max(ay1, by1) - Math.min(ay0, by0);
  const ew = Math.max(ewr, 0), eh = Math.max(ehr, 0), E = ew * eh;
  const giou = inter / U - (E - U) / E;
  // giou = inter/U - 1 + U/E
  const gInter = 1 / U + inter / (U * U) - 1 / E;
  const gAreaA = -inter / (U * U) + 1 / E;
  const gE = -U / (E * E);
  const gIw = iwr >= 0 ? gInter * ih : 0, gIh = ihr >= 0 ? gInter * iw : 0;
  const gEw = ewr >= 0 ? gE * eh : 0, gEh = ehr >= 0 ? gE * ew : 0;
  const gx0 = -gAreaA * ah - gIw * above(ax0, bx0) - gEw * above(bx0, ax0);
  const gx1 = gAreaA * ah + gIw * above(bx1, ax1) + gEw * above(ax1, bx1);
  const gy0 = -gAreaA * aw - gIh * above(ay0, by0) - gEh * above(by0, ay0);
  const gy1 = gAreaA * aw + gIh * above(by1, ay1) + gEh * above(ay1, by1);
  return { giou, grad: [gx0, gy0, gx1, gy1] };
}
