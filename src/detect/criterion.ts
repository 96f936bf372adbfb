/**
 * DETR / YOLOS training loss (`models/detector.py` SetCriterion, `models/matcher.py`
 * HungarianMatcher) with its gradient w.r.t. pred_logits and pred_boxes, in float64:
 * - matching per image: cost = cost_class·(−softmax(logits)[target class]) + cost_bbox·L1(cxcywh)
 *   + cost_giou·(−GIoU(xyxy)), solved exactly (linearSumAssignment, as scipy's linear_sum_assignment);
 * - loss_ce: cross entropy over every det token of every image, unmatched tokens labelled "no object"
 *   (the last class), class weights 1 except eos_coef on no-object, normalised by the sum of the
 *   weights (F.cross_entropy with `weight`);
 * - loss_bbox: L1 of matched boxes / num_boxes; loss_giou: Σ (1 − GIoU) / num_boxes;
 *   num_boxes = max(total targets, 1);
 * - loss = ce·1 + bbox·bbox_loss_coef + giou·giou_loss_coef (YOLOS's weight_dict).
 * class_error and cardinality_error are logged as DETR does (no gradient).
 */
import { VitkitError } from '../errors.js';
import { argmax } from '../nn/functional.js';
import { linearSumAssignment } from './assign.js';
import { cxcywhToXyxy, generalizedBoxIou, giouPairGrad } from './box_ops.js';

/** one image's ground truth: labels (n,) class indices and boxes (n, 4) normalised cx cy w h */
export interface DetTarget {
  labels: ArrayLike<number>;
  boxes: ArrayLike<number>;
}

export interface MatcherCosts {
  costClass: number;
  costBbox: number;
  costGiou: number;
}

export interface CriterionOptions extends Partial<MatcherCosts> {
  /** classification weight of "no object" (default 0.1) */
  eosCoef?: number;
  /** weight of loss_bbox in the total (default 5) */
  bboxLossCoef?: number;
  /** weight of loss_giou in the total (default 2) */
  giouLossCoef?: number;
}

/** one image's matching: pred (det token) indices ascending and the target index of each */
export interface Match {
  pred: Int32Array;
  target: Int32Array;
}

export interface CriterionResult {
  loss: number;
  lossCe: number;
  lossBbox: number;
  lossGiou: number;
  classError: number;
  cardinalityError: number;
  matches: Match[];
  /** dloss/dpred_logits (B, Q, K + 1) */
  dlogits: Float32Array;
  /** dloss/dpred_boxes (B, Q, 4) (after the sigmoid) */
  dboxes: Float32Array;
}

function softmaxRow(z: ArrayLike<number>, off: number, K: number, out: Float64Array): void {
  let m = -Infinity;
  for (let k = 0; k < K; k++) m = Math.max(m, z[off + k]!);
  let s = 0;
  for (let k = 0; k < K; k++) { out[k] = Math.exp(z[off + k]! - m); s += out[k]!; }
  for (let k = 0; k < K; k++) out[k] = out[k]! / s;
}

function checkTargets(targets: readonly DetTarget[], B: number, numClasses: number): void {
  if (targets.length !== B) throw new VitkitError(`Expected ${B} targets (one per image) but received ${targets.length}`);
  targets.forEach((t, b) => {
    const n = t.labels.length;
    if (t.boxes.length !== 4 * n) throw new VitkitError(`targets.${b}.boxes: expected (${n}, 4) for ${n} labels but received ${t.boxes.length} values`);
    for (let i = 0; i < n; i++) {
      const l = t.labels[i]!;
      if (!Number.isInteger(l) || l < 0 || l >= numClasses) {
        throw new VitkitError(`targets.${b}.labels[${i}] is ${l}, expected a class index in [0, ${numClasses - 1}] (the model has ${numClasses} classes; --num-classes re-initialises the class head)`);
      }
    }
  });
}

/** HungarianMatcher: the matching of every image (logits (B, Q, K1), boxes (B, Q, 4)) */
export function hungarianMatch(logits: ArrayLike<number>, boxes: ArrayLike<number>, B: number, Q: number, K1: number,
  targets: readonly DetTarget[], costs: Partial<MatcherCosts> = {}): Match[] {
  const cc = costs.costClass ?? 1, cb = costs.costBbox ?? 5, cg = costs.costGiou ?? 2;
  checkTargets(targets, B, K1 - 1);
  const prob = new Float64Array(K1);
  const out: Match[] = [];
  for (let b = 0; b < B; b++) {
    const t = targets[b]!, n = t.labels.length;
    if (n === 0) { out.push({ pred: new Int32Array(0), target: new Int32Array(0) }); continue; }
    const pb = Array.from({ length: Q * 4 }, (_, i) => boxes[b * Q * 4 + i]!);
    const giou = generalizedBoxIou(cxcywhToXyxy(pb), cxcywhToXyxy(t.boxes)); // (Q, n)
    const C = new Float64Array(Q * n); // (Q, n)
    for (let q = 0; q < Q; q++) {
      softmaxRow(logits, (b * Q + q) * K1, K1, prob);
      for (let j = 0; j < n; j++) {
        let l1 = 0;
        for (let k = 0; k < 4; k++) l1 += Math.abs(pb[q * 4 + k]! - t.boxes[j * 4 + k]!);
        C[q * n + j] = cb * l1 + cc * -prob[t.labels[j]!]! + cg * -giou[q * n + j]!;
      }
    }
    const a = linearSumAssignment(C, Q, n);
    out.push({ pred: a.rows, target: a.cols });
  }
  return out;
}

/** SetCriterion forward and backward (see the module comment). */
export function setCriterion(logits: ArrayLike<number>, boxes: ArrayLike<number>, B: number, Q: number, K1: number,
  targets: readonly DetTarget[], opts: CriterionOptions = {}): CriterionResult {
  if (logits.length !== B * Q * K1) throw new VitkitError(`Expected pred_logits (${B}, ${Q}, ${K1}) but received ${logits.length} values`);
  if (boxes.length !== B * Q * 4) throw new VitkitError(`Expected pred_boxes (${B}, ${Q}, 4) but received ${boxes.length} values`);
  const eos = opts.eosCoef ?? 0.1, wBbox = opts.bboxLossCoef ?? 5, wGiou = opts.giouLossCoef ?? 2;
  for (const [k, v] of [['eosCoef', eos], ['bboxLossCoef', wBbox], ['giouLossCoef', wGiou]] as const) {
    if (!(v >= 0) || !Number.isFinite(v)) throw new VitkitError(`Expected ${k} >= 0 but received ${v}`);
  }
  const matches = hungarianMatch(logits, boxes, B, Q, K1, targets, opts);
  const noObj = K1 - 1;
  const cls = new Int32Array(B * Q).fill(noObj); // target class per det token
  let numBoxes = 0;
  matches.forEach((m, b) => {
    numBoxes += targets[b]!.labels.length;
    for (let i = 0; i < m.pred.length; i++) cls[b * Q + m.pred[i]!] = targets[b]!.labels[m.target[i]!]!;
  });
  numBoxes = Math.max(numBoxes, 1);
  // weighted cross entropy: sum w_t (lse - z_t) / sum w_t
  const dlogits = new Float32Array(B * Q * K1); // (B, Q, K1)
  const prob = new Float64Array(K1);
  let wsum = 0, ce = 0;
  for (let r = 0; r < B * Q; r++) wsum += cls[r] === noObj ? eos : 1;
  let matched = 0, correct = 0, cardErr = 0;
  for (let b = 0; b < B; b++) {
    let card = 0;
    for (let q = 0; q < Q; q++) {
      const r = b * Q + q, off = r * K1, t = cls[r]!, w = t === noObj ? eos : 1;
      softmaxRow(logits, off, K1, prob);
      ce += w * -Math.log(prob[t]!);
      let arg = 0;
      for (let k = 0; k < K1; k++) {
        dlogits[off + k] = (w / wsum) * (prob[k]! - (k === t ? 1 : 0));
        if (logits[off + k]! > logits[off + arg]!) arg = k;
      }
      if (arg !== noObj) card++;
    }
    cardErr += Math.abs(card - targets[b]!.labels.length);
    const m = matches[b]!;
    for (let i = 0; i < m.pred.length; i++) {
      matched++;
      const off = (b * Q + m.pred[i]!) * K1;
      let arg = 0;
      for (let k = 0; k < K1; k++) if (logits[off + k]! > logits[off + arg]!) arg = k;
      if (arg === cls[b * Q + m.pred[i]!]) correct++;
    }
  }
  const lossCe = ce / wsum;
  // boxes
  const dboxes = new Float32Array(B * Q * 4); // (B, Q, 4)
  let l1 = 0, giouLoss = 0;
  matches.forEach((m, b) => {
    const t = targets[b]!;
    for (let i = 0; i < m.pred.length; i++) {
      const off = (b * Q + m.pred[i]!) * 4, toff = m.target[i]! * 4;
      const p = [boxes[off]!, boxes[off + 1]!, boxes[off + 2]!, boxes[off + 3]!];
      const g = [t.boxes[toff]!, t.boxes[toff + 1]!, t.boxes[toff + 2]!, t.boxes[toff + 3]!];
      const d = [0, 0, 0, 0];
      for (let k = 0; k < 4; k++) {
        const e = p[k]! - g[k]!;
        l1 += Math.abs(e);
        d[k] = (wBbox * Math.sign(e)) / numBoxes;
      }
      const { giou, grad } = giouPairGrad(cxcywhToXyxy(p), cxcywhToXyxy(g));
      giouLoss += 1 - giou;
      // xyxy = (cx - w/2, cy - h/2, cx + w/2, cy + h/2); dloss/dgiou = -wGiou / numBoxes
      const s = -wGiou / numBoxes;
      d[0] += s * (grad[0] + grad[2]);
      d[1] += s * (grad[1] + grad[3]);
      d[2] += s * 0.5 * (grad[2] - grad[0]);
      d[3] += s * 0.5 * (grad[3] - grad[1]);
      for (let k = 0; k < 4; k++) dboxes[off + k] = d[k]!;
    }
  });
  const lossBbox = l1 / numBoxes, lossGiou = giouLoss / numBoxes;
  return {
    loss: lossCe + wBbox * lossBbox + wGiou * lossGiou,
    lossCe, lossBbox, lossGiou,
    classError: matched === 0 ? 100 : 100 - (100 * correct) / matched,
    cardinalityError: cardErr / B,
    matches, dlogits, dboxes,
  };
}

/** One image's YOLOS PostProcess output. */
export interface PostProcessed {
  /** (Q,) best non-no-object softmax probability per det token */
  scores: Float32Array;
  /** (Q,) its class */
  labels: Int32Array;
  /** (Q, 4) x0 y0 x1 y1 in the target size's pixels */
  boxes: Float32Array;
}

/** YOLOS PostProcess: logits (B, Q, K1), boxes (B, Q, 4), sizes [[h, w], ...] per image. */
export function postProcess(logits: ArrayLike<number>, boxes: ArrayLike<number>, B: number, Q: number, K1: number,
  sizes: readonly (readonly [number, number])[]): PostProcessed[] {
  if (sizes.length !== B) throw new VitkitError(`Expected ${B} target sizes (one per image) but received ${sizes.length}`);
  const prob = new Float64Array(K1);
  const out: PostProcessed[] = [];
  for (let b = 0; b < B; b++) {
    const [h, w] = sizes[b]!;
    const scores = new Float32Array(Q), labels = new Int32Array(Q), bx = new Float32Array(Q * 4); // (Q), (Q), (Q, 4)
    for (let q = 0; q < Q; q++) {
      const r = b * Q + q;
      softmaxRow(logits, r * K1, K1, prob);
      const best = argmax(prob, 0, K1 - 1); // the last class is "no object"
      scores[q] = prob[best]!; labels[q] = best;
      const cx = boxes[r * 4]!, cy = boxes[r * 4 + 1]!, bw = boxes[r * 4 + 2]!, bh = boxes[r * 4 + 3]!;
      bx[q * 4] = (cx - 0.5 * bw) * w; bx[q * 4 + 1] = (cy - 0.5 * bh) * h;
      bx[q * 4 + 2] = (cx + 0.5 * bw) * w; bx[q * 4 + 3] = (cy + 0.5 * bh) * h;
    }
    out.push({ scores, labels, boxes: bx });
  }
  return out;
}
