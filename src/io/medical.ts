/**
 * Medical images into the model: DICOM files (recognised by the 'DICM' magic at byte 128, whatever
 * their name) and 16-bit grayscale PNG / TIFF (read with all 16 bits through sharp's
 * `.raw({ depth: 'ushort' })`), windowed to a float gray image in [0, 1] (io/window.ts), then the
 * model's resize / crop / normalisation on floats (never through 8 bits).
 *
 * Window choice: `--window` (c,w | preset | minmax) when given; else the DICOM file's first
 * WindowCenter / WindowWidth; else the image's own range (minmax), said once per process on stderr.
 * 16-bit PNG / TIFF without --window are scaled by the bit depth's range (v / 65535).
 */
import { existsSync } from 'node:fs';
import sharp from 'sharp';
import { VitkitError, expected } from '../errors.js';
import { decodeDicom, dicomFrameCount, isDicomBytes, type DicomImage } from './dicom.js';
import { readRegularFile, readRegularFileHead } from './files.js';
import { MAX_IMAGE_BYTES } from './image.js'; // used at call time only (image.ts imports this module)
import { applyWindow, minmaxWindow, valueRange, type WindowSpec } from './window.js';
import { interpolate } from '../nn/interpolate.js';
import { pyRound, shorterSideSize, type PreprocessConfig } from './preprocess_pixels.js';
import type { RawImage } from './pixels.js';
import type { Filter } from './resample.js';

/** How medical images are displayed: the window and which frame of a multi-frame file. */
export interface MedicalOptions {
  window?: WindowSpec;
  /** 0-based frame of a multi-frame DICOM file; undefined: every frame */
  frame?: number;
}

let defaults: MedicalOptions = {};
/** Set the process-wide --window / --frame (the CLI's image options do, before a command runs). */
export function setMedicalDefaults(o: MedicalOptions): void {
  defaults = { ...o };
}
export function medicalDefaults(): MedicalOptions {
  return defaults;
}

/**
 * One frame of a multi-frame DICOM file is named `<file>#frame=<k>` (k from 0, as --frame counts):
 * one string, so it travels through every image list, data worker and JSON output unchanged
 * (`"image": "scan.dcm#frame=3"`), reads like a URL fragment and sorts with its file. A path that
 * exists as written is always that file, even when its name ends in `#frame=<k>`.
 */
export const FRAME_MARK = '#frame=';
const FRAME_RE = /^(.+)#frame=(0|[1-9][0-9]*)$/;

/** `<file>#frame=<k>` */
export function frameRef(file: string, frame: number): string {
  return `${file}${FRAME_MARK}${frame}`;
}

/** Split an image source into its file and, for a `<file>#frame=<k>` reference, the frame. */
export function parseFrameRef(source: string): { file: string; frame?: number } {
  const m = FRAME_RE.exec(source);
  if (!m || existsSync(source)) return { file: source };
  return { file: m[1]!, frame: Number(m[2]) };
}


const FRAME_HEAD_BYTES = 64 * 1024;

/**
 * Expand image files into images: each frame of a multi-frame DICOM file becomes its own
 * `<file>#frame=<k>` (k = 0..F-1); with --frame k only that frame (checked against each file's
 * frame count here, before any image is decoded). Other files pass through unchanged, and so do
 * files that cannot be read or parsed (the decoder names the problem where the image is read); only
 * the first 64 KiB of a file is read (the whole file only for a DICOM header longer than that).
 */
export function expandFrames(files: readonly string[], opts: MedicalOptions = defaults): string[] {
  const out: string[] = [];
  for (const f of files) {
    let dicom: boolean;
    let frames: number;
    try {
      const { head, size } = readRegularFileHead(f, 'image file', FRAME_HEAD_BYTES);
      dicom = isDicomBytes(head);
      frames = 1;
      if (dicom) {
        // the header is nearly always within the first 64 KiB; else (or when no pixel data follows) the whole file
        const n = dicomFrameCount(head, f) ?? (size > head.length ? dicomFrameCount(readRegularFile(f, 'image file', MAX_IMAGE_BYTES), f) : null);
        if (n === null) throw new VitkitError(`Expected pixel data (7FE0,0010) in DICOM file ${f} but it has none`);
        frames = n;
      }
    } catch (e) {
      if (!(e instanceof VitkitError)) throw e;
      out.push(f); // unreadable: the decoder reports it (or --on-bad-image skip skips it) where the image is read
      continue;
    }
    if (opts.frame !== undefined) {
      if (dicom && opts.frame >= frames) throw expected(`a frame in 0..${frames - 1}`, `--frame for ${f} (${frames} frame${frames === 1 ? '' : 's'})`, opts.frame);
      out.push(frames > 1 ? frameRef(f, opts.frame) : f);
    } else if (frames > 1) {
      for (let k = 0; k < frames; k++) out.push(frameRef(f, k));
    } else {
      out.push(f);
    }
  }
  return out;
}

/** A windowed gray image: (frames, H, W) float32 in [0, 1]. */
export interface GrayImage {
  data: Float32Array;
  width: number;
  height: number;
  frames: number;
}

let saidMinmax = false;
function sayMinmaxOnce(label: string): void {
  if (saidMinmax) return;
  saidMinmax = true;
  process.stderr.write(`vitkit: ${label} has no window (WindowCenter/WindowWidth) and none was given: using each image's own range (--window minmax)\n`);
}

/** Whether these bytes go the medical path: DICOM, or a 16-bit single-channel PNG / TIFF. */
export async function medicalKind(bytes: Uint8Array): Promise<'dicom' | 'gray16' | null> {
  if (isDicomBytes(bytes)) return 'dicom';
  const png16 = bytes.length > 33 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[24] === 16 && (bytes[25] === 0 || bytes[25] === 4);
  const tiff = bytes.length > 8 && ((bytes[0] === 0x49 && bytes[1] === 0x49) || (bytes[0] === 0x4d && bytes[1] === 0x4d));
  if (!png16 && !tiff) return null;
  try {
    const m = await sharp(bytes, { limitInputPixels: false }).metadata();
    if (m.depth === 'ushort' && (m.channels === 1 || m.channels === 2)) return 'gray16';
  } catch {
    return null; // the ordinary path reports the decoding error
  }
  return null;
}

/** Window a DICOM image: modality LUT, then the chosen VOI window, frame by frame. */
export function windowDicom(d: DicomImage, label: string, opts: MedicalOptions = defaults): GrayImage {
  const per = d.rows * d.cols;
  let f0 = 0;
  let nf = d.frames;
  if (opts.frame !== undefined) {
    if (!Number.isInteger(opts.frame) || opts.frame < 0 || opts.frame >= d.frames) throw expected(`a frame in 0..${d.frames - 1}`, `--frame for ${label}`, opts.frame);
    f0 = opts.frame;
    nf = 1;
  }
  const out = new Float32Array(nf * per); // (frames, H, W)
  const lut = { slope: d.slope, intercept: d.intercept }; // the modality LUT, applied inside the window's pass
  for (let f = 0; f < nf; f++) {
    const st = d.stored.subarray((f0 + f) * per, (f0 + f + 1) * per); // (H*W,) stored values
    let c: number;
    let w: number;
    const spec = opts.window ?? d.window ?? null;
    if (spec === null || spec === 'minmax') {
      if (spec === null) sayMinmaxOnce(label);
      const r = valueRange(st, { padding: d.padding, lut });
      ({ center: c, width: w } = minmaxWindow(r.min, r.max));
    } else {
      c = spec.center;
      w = spec.width;
    }
    applyWindow(st, c, w, label, { invert: d.photometric === 'MONOCHROME1', padding: d.padding, lut, out: out.subarray(f * per, (f + 1) * per) });
  }
  return { data: out, width: d.cols, height: d.rows, frames: nf };
}

/** Decode + window a 16-bit grayscale PNG / TIFF (alpha dropped). */
export async function loadGray16(bytes: Uint8Array, label: string, opts: MedicalOptions = defaults): Promise<GrayImage> {
  let data: Buffer;
  let info: sharp.OutputInfo;
  try {
    ({ data, info } = await sharp(bytes, { limitInputPixels: 100_000_000, failOn: 'error' }).toColourspace('grey16').raw({ depth: 'ushort' }).toBuffer({ resolveWithObject: true }));
  } catch (e) {
    throw new VitkitError(`Expected a decodable 16-bit image for ${label} but decoding failed: ${(e as Error).message.split('\n')[0]}`);
  }
  const n = info.width * info.height;
  const u16 = new Uint16Array(data.buffer, data.byteOffset, data.length / 2); // (H, W, C)
  const C = info.channels;
  const x = new Float32Array(n); // (H*W,)
  for (let i = 0; i < n; i++) x[i] = u16[i * C]!;
  let out: Float32Array;
  const spec = opts.window;
  if (spec === undefined) {
    out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = x[i]! / 65535;
  } else if (spec === 'minmax') {
    const r = valueRange(x);
    const m = minmaxWindow(r.min, r.max);
    out = applyWindow(x, m.center, m.width, label);
  } else {
    out = applyWindow(x, spec.center, spec.width, label);
  }
  return { data: out, width: info.width, height: info.height, frames: 1 };
}

/** The windowed gray frames of a medical image's bytes, or null when the bytes are not one. */
export async function loadMedical(bytes: Uint8Array, label: string, opts: MedicalOptions = defaults): Promise<GrayImage | null> {
  const kind = await medicalKind(bytes);
  if (kind === 'dicom') return windowDicom(decodeDicom(bytes, label), label, opts);
  if (kind === 'gray16') return loadGray16(bytes, label, opts);
  return null;
}

/** One frame of a GrayImage quantised to 8 bits (round half up) for display / 8-bit pipelines. */
export function grayTo8bit(g: GrayImage, frame: number, channels: 1 | 3): RawImage {
  const n = g.width * g.height;
  const src = g.data.subarray(frame * n, (frame + 1) * n);
  const out = new Uint8Array(n * channels); // (H, W, C)
  for (let i = 0; i < n; i++) {
    const v = Math.min(255, Math.max(0, Math.floor(src[i]! * 255 + 0.5)));
    for (let c = 0; c < channels; c++) out[i * channels + c] = v;
  }
  return { data: out, width: g.width, height: g.height, channels };
}

/** The torch interpolate mode for a preprocessing filter on floats: bilinear, else bicubic. */
export function floatResizeMode(filter: Filter): 'bilinear' | 'bicubic' {
  return filter === 'bilinear' ? 'bilinear' : 'bicubic';
}

function resizeF(x: Float32Array, H: number, W: number, h: number, w: number, cfg: PreprocessConfig): Float32Array {
  if (h === H && w === W) return x;
  return interpolate(x, 1, H, W, h, w, floatResizeMode(cfg.interpolation), true);
}

function cropF(x: Float32Array, H: number, W: number, ch: number, cw: number, offsets: 'round' | 'floor'): Float32Array {
  if (H === ch && W === cw) return x;
  const out = new Float32Array(ch * cw); // (ch, cw), zero-padded where the image is smaller
  const top = offsets === 'round' ? pyRound((H - ch) / 2) : Math.floor((H - ch) / 2);
  const left = offsets === 'round' ? pyRound((W - cw) / 2) : Math.floor((W - cw) / 2);
  for (let y = 0; y < ch; y++) {
    const sy = y + top;
    if (sy < 0 || sy >= H) continue;
    for (let xx = 0; xx < cw; xx++) {
      const sx = xx + left;
      if (sx >= 0 && sx < W) out[y * cw + xx] = x[sy * W + sx]!;
    }
  }
  return out;
}

/**
 * One frame of a gray [0, 1] image through the model's geometry and normalisation, on floats:
 * resize with torch's antialiased interpolate (what torchvision does to a float tensor), center
 * crop, then (x - mean) / std in float32; a 3-channel model gets the gray plane repeated. (C, H, W)
 */
export function grayToPixelValues(g: GrayImage, frame: number, cfg: PreprocessConfig, out?: Float32Array, offset = 0): Float32Array {
  const n0 = g.width * g.height;
  let x = g.data.subarray(frame * n0, (frame + 1) * n0);
  let H = g.height;
  let W = g.width;
  if (cfg.kind === 'timm') {
    const sh = Math.floor(cfg.height / cfg.cropPct);
    const sw = Math.floor(cfg.width / cfg.cropPct);
    const [h, w] = cfg.cropMode === 'squash' ? [sh, sw] : sh === sw ? shorterSideSize(H, W, sh) : [sh, sw];
    x = resizeF(x, H, W, h, w, cfg);
    [H, W] = [h, w];
    x = cropF(x, H, W, cfg.height, cfg.width, 'round');
  } else {
    if (cfg.doResize) {
      const [h, w] = cfg.resizeMode === 'shortest_edge' ? shorterSideSize(H, W, cfg.resizeHeight) : [cfg.resizeHeight, cfg.resizeWidth];
      x = resizeF(x, H, W, h, w, cfg);
      [H, W] = [h, w];
    }
    x = cropF(x, H, W, cfg.height, cfg.width, 'floor');
  }
  return normalizeGray(x, cfg, out, offset);
}

/**
 * A gray [0, 1] plane (n values: H * W at the model's size) to normalised pixel_values: (x - mean) / std
 * in float32, the plane repeated to cfg.channels. (C, n)
 */
export function normalizeGray(x: Float32Array, cfg: PreprocessConfig, out?: Float32Array, offset = 0): Float32Array {
  const n = x.length;
  const C = cfg.channels;
  const dst = out ?? new Float32Array(C * n); // (C, n)
  const f = Math.fround;
  const norm = cfg.kind === 'timm' || cfg.doNormalize;
  for (let c = 0; c < C; c++) {
    const m = f(cfg.mean[c]!);
    const s = f(cfg.std[c]!);
    const base = offset + c * n;
    for (let i = 0; i < n; i++) dst[base + i] = norm ? f(f(x[i]! - m) / s) : x[i]!;
  }
  return dst;
}
