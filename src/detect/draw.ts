/**
 * The picture of `vitkit detect --out`: the image with each detection's box and a "label score"
 * tag, drawn as an SVG layer composited onto the pixels with sharp (librsvg renders the text), then
 * encoded as PNG and written atomically.
 */
import sharp from 'sharp';
import { VitkitError } from '../errors.js';
import type { RawImage } from '../io/image.js';
import { writeFileAtomic } from '../io/files.js';
import type { Detection } from './detect.js';

const PALETTE = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#42d4f4', '#f032e6', '#bfef45', '#fabed4', '#469990', '#dcbeff', '#9a6324'];

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** The SVG layer (W x H) with every detection's box and tag. */
export function detectionsSvg(W: number, H: number, dets: readonly Detection[]): string {
  const lw = Math.max(2, Math.round(Math.min(W, H) / 200));
  const fs = Math.max(10, Math.round(Math.min(W, H) / 40));
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}">`];
  for (const d of dets) {
    const color = PALETTE[d.label_id % PALETTE.length]!;
    const [x0, y0, x1, y1] = d.box.map((v, i) => Math.min(Math.max(v, 0), i % 2 === 0 ? W : H));
    parts.push(`<rect x="${x0!.toFixed(1)}" y="${y0!.toFixed(1)}" width="${Math.max(0, x1! - x0!).toFixed(1)}" height="${Math.max(0, y1! - y0!).toFixed(1)}" fill="none" stroke="${color}" stroke-width="${lw}"/>`);
    const text = `${d.label} ${d.score.toFixed(2)}`;
    const tw = Math.ceil(text.length * fs * 0.6) + 4, th = fs + 4;
    const ty = y0! >= th ? y0! - th : y0!;
    parts.push(`<rect x="${x0!.toFixed(1)}" y="${ty.toFixed(1)}" width="${tw}" height="${th}" fill="${color}"/>`);
    parts.push(`<text x="${(x0! + 2).toFixed(1)}" y="${(ty + fs).toFixed(1)}" font-family="DejaVu Sans, Arial, sans-serif" font-size="${fs}" fill="#ffffff">${esc(text)}</text>`);
  }
  parts.push('</svg>');
  return parts.join('');
}

/** PNG bytes of `img` with the detections drawn on it */
export async function renderDetections(img: RawImage, dets: readonly Detection[]): Promise<Uint8Array> {
  if (img.channels !== 3) throw new VitkitError(`Expected an RGB image to draw detections on but received ${img.channels} channel(s)`);
  try {
    return await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
      .composite([{ input: Buffer.from(detectionsSvg(img.width, img.height, dets)), top: 0, left: 0 }])
      .removeAlpha().png().toBuffer();
  } catch (e) {
    throw new VitkitError(`Cannot draw the detections: ${(e as Error).message.split('\n')[0]}`);
  }
}

/** Draw and write atomically (refuses an existing file unless overwrite) */
export async function writeDetectionsPng(file: string, img: RawImage, dets: readonly Detection[], opts: { overwrite?: boolean } = {}): Promise<void> {
  writeFileAtomic(file, await renderDetections(img, dets), { overwrite: opts.overwrite ?? false, what: 'PNG' });
}
