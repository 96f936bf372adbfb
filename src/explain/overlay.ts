/**
 * Heat-map overlays of a patch-grid map on the image as the user gave it.
 *
 * The model sees a resized and cropped (or padded) view of the image; `cropBox` gives that view's
 * rectangle in the original image's pixel coordinates, with the same arithmetic as
 * src/io/preprocess.ts (timm center / squash / border, Hugging Face exact or shortest-edge resize
 * with optional center crop). The (GH, GW) map is upsampled bilinearly over that rectangle (patch
 * centres at the patch centres, edges clamped, as F.interpolate(align_corners=False)), coloured
 * with a perceptual colour map and blended onto the image; what the model did not see is dimmed,
 * and the rectangle is outlined. A colour bar labelled 0 and the map's maximum is drawn in the
 * corner where the map is weakest.
 */
import sharp from 'sharp';
import type { RawImage } from '../io/image.js';
import type { PreprocessConfig } from '../io/preprocess.js';
import { pyRound, shorterSideSize } from '../io/preprocess.js';
import { VitkitError } from '../errors.js';
import { writeFileAtomic } from '../io/files.js';
import { colormapLut, lutIndex, type ColormapName } from './colormap.js';
import { drawText, textWidth, GLYPH_H } from '../io/font.js';

/** A rectangle in continuous pixel coordinates (pixel i spans [i, i + 1)). */
export interface Box { x0: number; y0: number; x1: number; y1: number }
/** An integer pixel rectangle: columns [x, x + w), rows [y, y + h). */
export interface Rect { x: number; y: number; w: number; h: number }

/** timm ResizeKeepRatio (no randomness). Returns [h, w]. */
function keepRatioSize(h: number, w: number, th: number, tw: number, longest: number): [number, number] {
  const rh = h / th;
  const rw = w / tw;
  const ratio = Math.max(rh, rw) * longest + Math.min(rh, rw) * (1 - longest);
  return [pyRound(h / ratio), pyRound(w / ratio)];
}

/** Offset of a crop of size c out of size n (negative: padding), as preprocess.ts's centerCrop computes it. */
function cropOffset(n: number, c: number, offsets: 'round' | 'floor'): number {
  if (c > n) return -Math.floor((c - n) / 2);
  return offsets === 'round' ? pyRound((n - c) / 2) : Math.floor((n - c) / 2);
}

/**
 * The rectangle of the original W x H image that the model input covers, in original pixel
 * coordinates (it may extend beyond the image where the preprocessing pads).
 */
export function cropBox(cfg: PreprocessConfig, W: number, H: number): Box {
  let rh = H, rw = W; // size after resizing
  let offsets: 'round' | 'floor' = 'round';
  let crop = true;
  if (cfg.kind === 'timm') {
    const sh = Math.floor(cfg.height / cfg.cropPct);
    const sw = Math.floor(cfg.width / cfg.cropPct);
    if (cfg.cropMode === 'squash') [rh, rw] = [sh, sw];
    else if (cfg.cropMode === 'border') [rh, rw] = keepRatioSize(H, W, sh, sw, 1.0);
    else if (sh === sw) [rh, rw] = shorterSideSize(H, W, sh);
    else [rh, rw] = keepRatioSize(H, W, sh, sw, 0.0);
  } else {
    offsets = 'floor';
    crop = cfg.doCenterCrop;
    if (cfg.doResize) {
      if (cfg.resizeMode === 'shortest_edge') [rh, rw] = shorterSideSize(H, W, cfg.resizeHeight);
      else [rh, rw] = [cfg.resizeHeight, cfg.resizeWidth];
    }
  }
  const sx = W / rw, sy = H / rh;
  if (!crop) return { x0: 0, y0: 0, x1: W, y1: H };
  const left = cropOffset(rw, cfg.width, offsets);
  const top = cropOffset(rh, cfg.height, offsets);
  return { x0: left * sx, y0: top * sy, x1: (left + cfg.width) * sx, y1: (top + cfg.height) * sy };
}

/**
 * Upsample a (GH, GW) map over `box` of a W x H canvas: one value per pixel, NaN outside the box.
 */
export function upsampleMap(map: ArrayLike<number>, GH: number, GW: number, box: Box, W: number, H: number): Float32Array {
  if (map.length !== GH * GW) throw new VitkitError(`Expected a map of ${GH}x${GW} = ${GH * GW} values but received ${map.length}`);
  const out = new Float32Array(W * H).fill(NaN);
  const bw = box.x1 - box.x0, bh = box.y1 - box.y0;
  // per column / row: grid index pair and weight
  const axis = (n: number, b0: number, bs: number, G: number) => {
    const i0 = new Int32Array(n).fill(-1), i1 = new Int32Array(n), w1 = new Float32Array(n);
    for (let p = 0; p < n; p++) {
      const c = p + 0.5;
      if (c < b0 || c > b0 + bs) continue;
      let u = ((c - b0) / bs) * G - 0.5;
      if (u < 0) u = 0;
      if (u > G - 1) u = G - 1;
      const f = Math.floor(u);
      i0[p] = f;
      i1[p] = Math.min(f + 1, G - 1);
      w1[p] = u - f;
    }
    return { i0, i1, w1 };
  };
  const ax = axis(W, box.x0, bw, GW), ay = axis(H, box.y0, bh, GH);
  for (let y = 0; y < H; y++) {
    const r0 = ay.i0[y]!;
    if (r0 < 0) continue;
    const r1 = ay.i1[y]!, wy = ay.w1[y]!;
    for (let x = 0; x < W; x++) {
      const c0 = ax.i0[x]!;
      if (c0 < 0) continue;
      const c1 = ax.i1[x]!, wx = ax.w1[x]!;
      const top = map[r0 * GW + c0]! * (1 - wx) + map[r0 * GW + c1]! * wx;
      const bot = map[r1 * GW + c0]! * (1 - wx) + map[r1 * GW + c1]! * wx;
      out[y * W + x] = top * (1 - wy) + bot * wy;
    }
  }
  return out;
}

export interface OverlayOptions {
  colormap?: ColormapName;
  /** weight of the heat map over the image inside the model's view (default 0.5) */
  alpha?: number;
  /** value mapped to the top of the colour map (default: the map's maximum); 0 maps to the bottom */
  vmax?: number;
  /** draw the colour bar (default true) */
  legend?: boolean;
  /** a title drawn above the colour bar (lowercase letters and digits) */
  title?: string;
  /** a label drawn in the top-left corner */
  label?: string;
}

export interface Overlay {
  image: RawImage;
  /** where the colour bar panel is, when drawn */
  legend: Rect | null;
  /** the value at the top of the colour bar */
  vmax: number;
}

/** Short number label: 3 significant digits, exponent form for very small or large values. */
export function fmtValue(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e-3 && a < 1e4) return String(Number(v.toPrecision(3)));
  return v.toExponential(2).replace('e-0', 'e-').replace('e+0', 'e+');
}

/** Integer text scale for an image of this size. */
export function textScale(W: number, H: number): number {
  return Math.max(1, Math.floor(Math.min(W, H) / 200));
}

function fillRect(img: RawImage, r: Rect, color: readonly number[], opacity = 1): void {
  const { width: W, height: H, data } = img;
  for (let y = Math.max(0, r.y); y < Math.min(H, r.y + r.h); y++) {
    for (let x = Math.max(0, r.x); x < Math.min(W, r.x + r.w); x++) {
      const o = (y * W + x) * 3;
      for (let c = 0; c < 3; c++) data[o + c] = Math.round(data[o + c]! * (1 - opacity) + color[c]! * opacity);
    }
  }
}

/** Size of the colour bar panel for a W x H image. */
function legendSize(W: number, H: number, maxLabel: string, title: string | undefined): { w: number; h: number; s: number; barW: number; barH: number; pad: number } {
  const s = textScale(W, H);
  const pad = 3 * s;
  const barW = Math.max(6, Math.round(0.03 * Math.min(W, H)));
  const barH = Math.max(24, Math.round(0.3 * H));
  const labelW = Math.max(textWidth(maxLabel, s), textWidth('0', s));
  const titleH = title ? GLYPH_H * s + pad : 0;
  const w = Math.max(pad + barW + pad + labelW + pad, title ? textWidth(title, s) + 2 * pad : 0);
  const h = pad + titleH + GLYPH_H * s / 2 + barH + GLYPH_H * s / 2 + pad;
  return { w: Math.ceil(w), h: Math.ceil(h), s, barW, barH, pad };
}

/** The legend corner with the weakest heat (ties: bottom-right, bottom-left, top-right, top-left). */
function legendCorner(heat: Float32Array, W: number, H: number, w: number, h: number): Rect {
  const m = Math.max(2, Math.round(0.01 * Math.min(W, H)));
  const cands: Rect[] = [
    { x: W - w - m, y: H - h - m, w, h },
    { x: m, y: H - h - m, w, h },
    { x: W - w - m, y: m, w, h },
    { x: m, y: m, w, h },
  ];
  let best = cands[0]!, bestV = Infinity;
  for (const r of cands) {
    let s = 0, n = 0;
    for (let y = Math.max(0, r.y); y < Math.min(H, r.y + r.h); y++) {
      for (let x = Math.max(0, r.x); x < Math.min(W, r.x + r.w); x++) {
        const v = heat[y * W + x]!;
        if (!Number.isNaN(v)) { s += v; n++; }
      }
    }
    const mean = n ? s / n : -1; // over nothing the model saw: best
    if (mean < bestV - 1e-12) { bestV = mean; best = r; }
  }
  return best;
}

/** Draw a vertical colour bar panel at `r`: top = vmax, bottom = 0. */
function drawLegend(img: RawImage, r: Rect, lut: Uint8Array, vmax: number, title: string | undefined): void {
  const maxLabel = fmtValue(vmax);
  const { s, barW, barH, pad } = legendSize(img.width, img.height, maxLabel, title);
  fillRect(img, r, [0, 0, 0], 0.65);
  const white = [255, 255, 255] as const;
  let y = r.y + pad;
  if (title) {
    drawText(img, r.x + pad, y, title, s, white);
    y += GLYPH_H * s + pad;
  }
  const barTop = Math.round(y + (GLYPH_H * s) / 2);
  const bx = r.x + pad;
  for (let k = 0; k < barH; k++) {
    const t = 1 - k / Math.max(1, barH - 1);
    const i = lutIndex(t);
    fillRect(img, { x: bx, y: barTop + k, w: barW, h: 1 }, [lut[3 * i]!, lut[3 * i + 1]!, lut[3 * i + 2]!]);
  }
  const lx = bx + barW + pad;
  drawText(img, lx, barTop - Math.floor((GLYPH_H * s) / 2), maxLabel, s, white);
  drawText(img, lx, barTop + barH - 1 - Math.floor((GLYPH_H * s) / 2), '0', s, white);
}

function outlineBox(img: RawImage, box: Box): void {
  const { width: W, height: H } = img;
  if (box.x0 <= 0.5 && box.y0 <= 0.5 && box.x1 >= W - 0.5 && box.y1 >= H - 0.5) return;
  const t = Math.max(1, Math.round(Math.min(W, H) / 300));
  const x0 = Math.max(0, Math.round(box.x0)), y0 = Math.max(0, Math.round(box.y0));
  const x1 = Math.min(W, Math.round(box.x1)), y1 = Math.min(H, Math.round(box.y1));
  const c = [235, 235, 235];
  fillRect(img, { x: x0, y: y0, w: x1 - x0, h: t }, c);
  fillRect(img, { x: x0, y: y1 - t, w: x1 - x0, h: t }, c);
  fillRect(img, { x: x0, y: y0, w: t, h: y1 - y0 }, c);
  fillRect(img, { x: x1 - t, y: y0, w: t, h: y1 - y0 }, c);
}

/**
 * Blend a (GH, GW) map, placed over `box`, onto an RGB image. Values are scaled by 1 / vmax and
 * clamped to [0, 1] (negative values show as 0).
 */
export function renderOverlay(img: RawImage, map: ArrayLike<number>, GH: number, GW: number, box: Box, opts: OverlayOptions = {}): Overlay {
  if (img.channels !== 3) throw new VitkitError(`Expected an RGB image for the overlay but received ${img.channels} channel(s)`);
  const { width: W, height: H } = img;
  const lut = colormapLut(opts.colormap ?? 'viridis');
  const alpha = opts.alpha ?? 0.5;
  if (!(alpha >= 0 && alpha <= 1)) throw new VitkitError(`Expected an overlay alpha in [0, 1] but received ${alpha}`);
  let vmax = opts.vmax ?? 0;
  if (opts.vmax === undefined) for (let i = 0; i < map.length; i++) vmax = Math.max(vmax, map[i]!);
  const heat = upsampleMap(map, GH, GW, box, W, H);
  const out = new Uint8Array(W * H * 3);
  const src = img.data;
  for (let p = 0; p < W * H; p++) {
    const v = heat[p]!;
    const o = p * 3;
    if (Number.isNaN(v)) {
      for (let c = 0; c < 3; c++) out[o + c] = Math.round(src[o + c]! * 0.45);
      continue;
    }
    const i = 3 * lutIndex(vmax > 0 ? v / vmax : 0);
    for (let c = 0; c < 3; c++) out[o + c] = Math.round(src[o + c]! * (1 - alpha) + lut[i + c]! * alpha);
  }
  const image: RawImage = { data: out, width: W, height: H, channels: 3 };
  outlineBox(image, box);
  let legend: Rect | null = null;
  if (opts.legend ?? true) {
    const { w, h } = legendSize(W, H, fmtValue(vmax), opts.title);
    if (w < W && h < H) {
      legend = legendCorner(heat, W, H, w, h);
      drawLegend(image, legend, lut, vmax, opts.title);
    }
  }
  if (opts.label) {
    const s = textScale(W, H);
    fillRect(image, { x: 0, y: 0, w: textWidth(opts.label, s) + 4 * s, h: GLYPH_H * s + 4 * s }, [0, 0, 0], 0.65);
    drawText(image, 2 * s, 2 * s, opts.label, s, [255, 255, 255]);
  }
  return { image, legend, vmax };
}

/** Resize an RGB image (for the per-head tiles). */
async function resizeRgb(img: RawImage, w: number, h: number): Promise<RawImage> {
  const buf = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .resize(w, h, { fit: 'fill', kernel: 'lanczos3' })
    .raw()
    .toBuffer();
  return { data: new Uint8Array(buf.buffer, buf.byteOffset, buf.length), width: w, height: h, channels: 3 };
}

/** Columns and rows of the tile grid for n tiles. */
export function gridShape(n: number): [number, number] {
  const cols = Math.ceil(Math.sqrt(n));
  return [cols, Math.ceil(n / cols)];
}

/**
 * One small overlay per map (e.g. per attention head) in a grid on a canvas of the image's own
 * size, all with the same colour scale (0 to the largest value of any map), labelled h0, h1, ...
 */
/** the smallest tile of a head grid, in pixels */
const MIN_TILE = 8;

export async function renderGrid(img: RawImage, maps: ArrayLike<number>[], GH: number, GW: number, box: Box, opts: OverlayOptions & { labels?: string[] } = {}): Promise<Overlay> {
  const [cols, rows] = gridShape(maps.length);
  // the canvas is the image's size, enlarged where that leaves a tile under MIN_TILE pixels (a 1 x 1
  // image has no room for 3 x 4 tiles)
  const grow = Math.max(1, (MIN_TILE * cols) / img.width, (MIN_TILE * rows) / img.height);
  const W = Math.round(img.width * grow), H = Math.round(img.height * grow);
  const tw = Math.floor(W / cols), th = Math.floor(H / rows);
  const s = Math.min(tw / W, th / H);
  const iw = Math.max(1, Math.round(W * s)), ih = Math.max(1, Math.round(H * s));
  const small = await resizeRgb(img, iw, ih);
  // box is in the image's pixels
  const sbox: Box = { x0: box.x0 * (iw / img.width), y0: box.y0 * (ih / img.height), x1: box.x1 * (iw / img.width), y1: box.y1 * (ih / img.height) };
  let vmax = opts.vmax ?? 0;
  if (opts.vmax === undefined) for (const m of maps) for (let i = 0; i < m.length; i++) vmax = Math.max(vmax, m[i]!);
  const canvas: RawImage = { data: new Uint8Array(W * H * 3), width: W, height: H, channels: 3 };
  canvas.data.fill(24);
  maps.forEach((m, k) => {
    const label = opts.labels?.[k] ?? `h${k}`;
    const tile = renderOverlay(small, m, GH, GW, sbox, { ...opts, vmax, legend: false, label }).image;
    const ox = (k % cols) * tw + Math.floor((tw - iw) / 2);
    const oy = Math.floor(k / cols) * th + Math.floor((th - ih) / 2);
    for (let y = 0; y < ih; y++) canvas.data.set(tile.data.subarray(y * iw * 3, (y + 1) * iw * 3), ((oy + y) * W + ox) * 3);
  });
  let legend: Rect | null = null;
  if (opts.legend ?? true) {
    const lut = colormapLut(opts.colormap ?? 'viridis');
    const { w, h } = legendSize(W, H, fmtValue(vmax), opts.title);
    if (w < W && h < H) {
      const m = Math.max(2, Math.round(0.01 * Math.min(W, H)));
      if (maps.length < cols * rows) {
        // the first empty tile
        const k = maps.length;
        const tx = (k % cols) * tw, ty = Math.floor(k / cols) * th;
        legend = { x: tx + Math.max(m, Math.floor((tw - w) / 2)), y: ty + Math.max(m, Math.floor((th - h) / 2)), w, h };
      } else {
        legend = { x: W - w - m, y: H - h - m, w, h };
      }
      drawLegend(canvas, legend, lut, vmax, opts.title);
    }
  }
  return { image: canvas, legend, vmax };
}

/**
 * Encode `img` as PNG and write it atomically (temporary file, fsync, rename): a full disk or an
 * interruption never leaves a truncated PNG under the final name. Without `overwrite` an existing
 * file is refused.
 */
export async function writePng(file: string, img: RawImage, opts: { overwrite?: boolean } = {}): Promise<void> {
  let png: Buffer;
  try {
    png = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels } }).png().toBuffer();
  } catch (e) {
    throw new VitkitError(`Cannot write PNG ${file}: ${(e as Error).message.split('\n')[0]}`);
  }
  writeFileAtomic(file, png, { overwrite: opts.overwrite ?? false, what: 'PNG' });
}
