/**
 * curves.png: training curves drawn into an RGBA buffer with a built-in 5x7 bitmap font and
 * encoded with sharp. Left panel: train and val loss; right panel: val accuracy and top-5 (%).
 * Each panel has a frame, grid lines at "nice" ticks, tick labels, a title and a legend.
 */
import sharp from 'sharp';
import type { EpochMetrics } from './loop.js';
import { glyph } from '../io/font.js';

type RGB = readonly [number, number, number];



/** An RGBA canvas with the few primitives a line plot needs. */
export class Canvas {
  readonly width: number;
  readonly height: number;
  /** (H, W, 4) */
  readonly data: Uint8Array;

  constructor(width: number, height: number, bg: RGB = [255, 255, 255]) {
    this.width = width;
    this.height = height;
    this.data = new Uint8Array(width * height * 4);
    for (let i = 0; i < 4; i++) this.data[i] = i < 3 ? bg[i]! : 255;
    new Uint32Array(this.data.buffer).fill(new Uint32Array(this.data.buffer, 0, 1)[0]!);
  }

  set(x: number, y: number, c: RGB): void {
    x = Math.round(x);
    y = Math.round(y);
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const o = (y * this.width + x) * 4;
    this.data[o] = c[0];
    this.data[o + 1] = c[1];
    this.data[o + 2] = c[2];
    this.data[o + 3] = 255;
  }

  get(x: number, y: number): [number, number, number, number] {
    const o = (y * this.width + x) * 4;
    return [this.data[o]!, this.data[o + 1]!, this.data[o + 2]!, this.data[o + 3]!];
  }

  rect(x0: number, y0: number, w: number, h: number, c: RGB): void {
    for (let y = y0; y < y0 + h; y++) for (let x = x0; x < x0 + w; x++) this.set(x, y, c);
  }

  hline(x0: number, x1: number, y: number, c: RGB): void {
    for (let x = Math.min(x0, x1); x <= Math.max(x0, x1); x++) this.set(x, y, c);
  }

  vline(x: number, y0: number, y1: number, c: RGB): void {
    for (let y = Math.min(y0, y1); y <= Math.max(y0, y1); y++) this.set(x, y, c);
  }

  /** A line `thick` pixels wide (a square brush stepped along it). */
  line(x0: number, y0: number, x1: number, y1: number, c: RGB, thick = 2): void {
    const n = Math.max(1, Math.ceil(Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0))));
    const r0 = -Math.floor((thick - 1) / 2);
    for (let i = 0; i <= n; i++) {
      const x = Math.round(x0 + ((x1 - x0) * i) / n);
      const y = Math.round(y0 + ((y1 - y0) * i) / n);
      for (let dy = 0; dy < thick; dy++) for (let dx = 0; dx < thick; dx++) this.set(x + r0 + dx, y + r0 + dy, c);
    }
  }

  /** Text in the 5x7 font at integer `scale`; (x, y) is the top-left corner. */
  text(x: number, y: number, s: string, c: RGB, scale = 1): void {
    let cx = Math.round(x);
    for (const ch of s) {
      const g = glyph(ch) ?? glyph(ch.toLowerCase()) ?? glyph(' ')!;
      for (let r = 0; r < 7; r++) {
        for (let q = 0; q < 5; q++) if (g[r]![q] === '1') this.rect(cx + q * scale, Math.round(y) + r * scale, scale, scale, c);
      }
      cx += 6 * scale;
    }
  }

  textWidth(s: string, scale = 1): number {
    return s.length ? (s.length * 6 - 1) * scale : 0;
  }

  png(): Promise<Buffer> {
    return sharp(Buffer.from(this.data.buffer, this.data.byteOffset, this.data.byteLength), { raw: { width: this.width, height: this.height, channels: 4 } })
      .png()
      .toBuffer();
  }
}

/** Tick values covering [lo, hi] at a 1-2-5 step, about `target` of them. */
export function niceTicks(lo: number, hi: number, target = 5): { ticks: number[]; lo: number; hi: number; step: number } {
  if (!(hi > lo)) {
    const pad = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / target;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const a = Math.floor(lo / step + 1e-9) * step;
  const b = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let v = a; v <= b + step * 1e-6; v += step) ticks.push(Number(v.toPrecision(12)));
  return { ticks, lo: a, hi: b, step };
}

function fmtTick(v: number, step: number): string {
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return v.toFixed(decimals);
}

export interface Series {
  label: string;
  color: RGB;
  /** y per x; null = no point */
  values: (number | null)[];
}

const AXIS: RGB = [60, 60, 60];
const GRID: RGB = [225, 225, 225];

/** One line-plot panel at (x0, y0) of size w x h. */
export function drawPanel(cv: Canvas, x0: number, y0: number, w: number, h: number, title: string, xs: number[], series: Series[], legend: 'top' | 'bottom' = 'top', xLabel = 'epoch'): void {
  const left = x0 + 52, right = x0 + w - 10, top = y0 + 26, bottom = y0 + h - 34;
  cv.text(x0 + (w - cv.textWidth(title, 2)) / 2, y0 + 4, title, AXIS, 2);
  const vals = series.flatMap((s) => s.values.filter((v): v is number => v !== null && Number.isFinite(v)));
  const yt = niceTicks(vals.length ? Math.min(...vals) : 0, vals.length ? Math.max(...vals) : 1);
  const xMin = xs.length ? xs[0]! : 0, xMax = xs.length ? xs[xs.length - 1]! : 1;
  const xt = niceTicks(xMin === xMax ? xMin - 1 : xMin, xMin === xMax ? xMax + 1 : xMax, 6);
  const xStep = Math.max(1, xt.step);
  const xlo = xMin === xMax ? xMin - 1 : xMin, xhi = xMin === xMax ? xMax + 1 : xMax;
  const px = (x: number) => left + ((x - xlo) / (xhi - xlo)) * (right - left);
  const py = (y: number) => bottom - ((y - yt.lo) / (yt.hi - yt.lo)) * (bottom - top);
  for (const t of yt.ticks) {
    const y = Math.round(py(t));
    cv.hline(left, right, y, GRID);
    cv.hline(left - 4, left, y, AXIS);
    const s = fmtTick(t, yt.step);
    cv.text(left - 7 - cv.textWidth(s), y - 3, s, AXIS);
  }
  for (let x = Math.ceil(xlo / xStep) * xStep; x <= xhi + 1e-9; x += xStep) {
    if (!Number.isInteger(x)) continue;
    const X = Math.round(px(x));
    cv.vline(X, top, bottom, GRID);
    cv.vline(X, bottom, bottom + 4, AXIS);
    const s = String(x);
    cv.text(X - cv.textWidth(s) / 2, bottom + 8, s, AXIS);
  }
  cv.text((left + right - cv.textWidth(xLabel)) / 2, bottom + 21, xLabel, AXIS);
  // frame
  cv.hline(left, right, top, AXIS);
  cv.hline(left, right, bottom, AXIS);
  cv.vline(left, top, bottom, AXIS);
  cv.vline(right, top, bottom, AXIS);
  // lines and point markers
  const drawn = series.filter((s) => s.values.some((v) => v !== null && Number.isFinite(v)));
  for (const s of drawn) {
    let prev: [number, number] | null = null;
    s.values.forEach((v, i) => {
      if (v === null || !Number.isFinite(v)) {
        prev = null;
        return;
      }
      const p: [number, number] = [px(xs[i]!), py(v)];
      if (prev) cv.line(prev[0], prev[1], p[0], p[1], s.color, 2);
      if (xs.length <= 40) cv.rect(Math.round(p[0]) - 2, Math.round(p[1]) - 2, 5, 5, s.color);
      prev = p;
    });
  }
  // legend, top right inside the frame
  if (drawn.length) {
    const lw = Math.max(...drawn.map((s) => cv.textWidth(s.label))) + 30;
    const lh = drawn.length * 14 + 6;
    const lx = right - lw - 6, ly = legend === 'top' ? top + 6 : bottom - 6 - lh;
    cv.rect(lx, ly, lw, lh, [255, 255, 255]);
    cv.hline(lx, lx + lw, ly, GRID);
    cv.hline(lx, lx + lw, ly + lh, GRID);
    cv.vline(lx, ly, ly + lh, GRID);
    cv.vline(lx + lw, ly, ly + lh, GRID);
    drawn.forEach((s, k) => {
      const y = ly + 6 + k * 14;
      cv.rect(lx + 6, y + 2, 16, 3, s.color);
      cv.text(lx + 26, y, s.label, AXIS);
    });
  }
}

export const COLORS = { train: [31, 119, 180] as RGB, val: [255, 127, 14] as RGB, acc: [44, 160, 44] as RGB, top5: [148, 103, 189] as RGB, ema: [214, 39, 40] as RGB };

/** The loss / accuracy figure of a run's history. */
export function drawCurves(history: EpochMetrics[], width = 900, height = 360): Canvas {
  const cv = new Canvas(width, height);
  const xs = history.map((m) => m.epoch);
  drawPanel(cv, 0, 0, Math.floor(width / 2), height, 'loss', xs, [
    { label: 'train loss', color: COLORS.train, values: history.map((m) => m.train_loss) },
    { label: 'val loss', color: COLORS.val, values: history.map((m) => m.val_loss) },
  ]);
  const acc: Series[] = [
    { label: 'val acc', color: COLORS.acc, values: history.map((m) => m.val_acc) },
    { label: 'val top-5', color: COLORS.top5, values: history.map((m) => m.val_top5) },
  ];
  if (history.some((m) => m.val_acc_ema !== undefined)) acc.push({ label: 'val acc ema', color: COLORS.ema, values: history.map((m) => m.val_acc_ema ?? null) });
  drawPanel(cv, Math.floor(width / 2), 0, width - Math.floor(width / 2), height, 'accuracy (%)', xs, acc, 'bottom');
  return cv;
}

export function renderCurves(history: EpochMetrics[]): Promise<Buffer> {
  return drawCurves(history).png();
}
