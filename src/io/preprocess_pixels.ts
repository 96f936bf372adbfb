/**
 * Preprocessing math on decoded pixels, no decoder and no file (so it runs in a browser too);
 * io/preprocess.ts adds decoding files with sharp (re-exporting all of this).
 *
 * The exact eval-time preprocessing of timm and Hugging Face transformers checkpoints:
 * (decoded) 8-bit pixels (PIL convert semantics) -> resize / crop (PIL or torchvision arithmetic)
 * -> float32 (C, H, W) normalized `pixel_values`.
 *
 * timm (`timm.data.create_transform(**resolve_data_config(model=m))`, `transforms_imagenet_eval`):
 *   scale_size = floor(img_size / crop_pct) per side, then by crop_mode
 *   - 'center': square scale_size -> torchvision `Resize(int)` (shorter side to scale_size, longer
 *     side `int(s * long / short)`, truncated) with the configured interpolation; a non-square
 *     scale_size -> timm's `ResizeKeepRatio(scale_size)`, which (a timm quirk) ignores the configured
 *     interpolation and uses bilinear; then torchvision `CenterCrop` (offsets `int(round(d / 2))`,
 *     Python's round-half-even; zero padding when the image is smaller).
 *   - 'squash': `Resize((h, w))` then `CenterCrop`.
 *   - 'border': `ResizeKeepRatio(longest=1)` then `CenterCropOrPad` filled with round(255 * mean).
 *   then `ToTensor` (x / 255 in float32) and `Normalize` ((x - mean) / std in float32).
 *   Resizing of PIL images is Pillow's `Image.resize` (see resample.ts).
 *
 * transformers (`ViTImageProcessor` and the common BaseImageProcessor fields): resize to
 * size {height, width} (or {shortest_edge}) with `resample` (PIL code, default bilinear), optional
 * center crop to crop_size (offsets floor(d / 2)), rescale by rescale_factor, normalize. Two
 * backends: 'pil' (PIL resize, numpy float math) and 'torchvision' (uint8 antialiased
 * tensor resize, normalize fused as (x - mean/rf) / (std/rf) in float32).
 */
import { VitkitError, expected } from '../errors.js';
import { cropImage, type RawImage } from './pixels.js';
import { FILTERS, PIL_RESAMPLE_CODES, resizePil, resizeTorchU8, type Filter } from './resample.js';

export type { Filter } from './resample.js';

export interface PreprocessConfig {
  kind: 'timm' | 'hf';
  channels: 1 | 3;
  /** final pixel_values height / width */
  height: number;
  width: number;
  mean: number[];
  std: number[];
  interpolation: Filter;
  // timm
  cropPct: number;
  cropMode: 'center' | 'squash' | 'border';
  // hf
  doResize: boolean;
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  doCenterCrop: boolean;
  /** hf: target of resize (== height/width for ViTImageProcessor); for 'shortest_edge' both hold the edge */
  resizeHeight: number;
  resizeWidth: number;
  /** hf: 'exact' resizes to resizeHeight x resizeWidth; 'shortest_edge' scales the shorter side to resizeHeight */
  resizeMode?: 'exact' | 'shortest_edge';
  /** hf: which implementation the processor resizes with (default 'torchvision', transformers 5's default backend) */
  hfBackend?: 'pil' | 'torchvision';
}

export const IMAGENET_DEFAULT_MEAN = [0.485, 0.456, 0.406];
export const IMAGENET_DEFAULT_STD = [0.229, 0.224, 0.225];
export const IMAGENET_STANDARD_MEAN = [0.5, 0.5, 0.5];
export const IMAGENET_STANDARD_STD = [0.5, 0.5, 0.5];
const DEFAULT_CROP_PCT = 0.875;

// ---------------------------------------------------------------------------------------------
// config resolution

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function posInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw expected('a positive integer', what, v);
  return v;
}

function numList(v: unknown, what: string): number[] {
  if (typeof v === 'number' && Number.isFinite(v)) return [v];
  if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw expected('a number or a non-empty list of numbers', what, v);
  }
  return v as number[];
}

/** mean/std to exactly `channels` entries: a single value is broadcast; 3 values for a 1-channel model are averaged. */
function perChannel(v: number[], channels: 1 | 3, what: string): number[] {
  if (v.length === channels) return [...v];
  if (v.length === 1) return Array<number>(channels).fill(v[0]);
  if (channels === 1 && v.length === 3) return [(v[0] + v[1] + v[2]) / 3];
  throw expected(`1 or ${channels} values`, what, v);
}

function checkChannels(inChans: number, what: string): 1 | 3 {
  if (inChans !== 1 && inChans !== 3) throw expected('1 or 3 input channels', what, inChans);
  return inChans;
}

function filterFrom(v: unknown, what: string): Filter {
  if (typeof v === 'string' && (FILTERS as readonly string[]).includes(v)) return v as Filter;
  if (typeof v === 'number' && v in PIL_RESAMPLE_CODES) return PIL_RESAMPLE_CODES[v];
  if (v === 'random') return 'bicubic';
  throw expected(`one of ${FILTERS.join(', ')} or a PIL resample code 0-5`, what, v);
}

/** std divides: every value must be a finite number > 0 (a 0 would make every pixel_value infinite). */
function positiveStd(std: number[], what: string): number[] {
  // below 1e-6 a pixel value reaches 1e6 and more (1e-300 overflows float32 to Infinity): no real normalization
  const i = std.findIndex((v) => !(v >= 1e-6) || !(v <= 1e6));
  if (i >= 0) throw expected(`std values in [1e-6, 1e6] (a zero or tiny std makes every pixel infinite)`, `${what}[${i}]`, std[i]);
  return std;
}

/**
 * The largest side a preprocessing step may resize or crop to: 4 times the model's input side,
 * and at least 1024. Checked when the config is read, before any image is decoded or resized
 * (an HF `size` of 20000 x 20000 or a timm crop_pct of 1e-6 would otherwise allocate gigabytes).
 */
export function maxResizeSide(modelSide: number): number {
  return Math.max(1024, 4 * modelSide);
}

function checkResizeSide(h: number, w: number, modelH: number, modelW: number, what: string): void {
  const limit = maxResizeSide(Math.max(modelH, modelW));
  if (!(h <= limit && w <= limit)) {
    throw expected(`a size of at most ${limit} x ${limit} pixels (4 x the model input ${modelH} x ${modelW}, at least 1024)`, what, `${h} x ${w}`);
  }
}

/**
 * The preprocessing must produce what the model takes: `channels` x `side` x `side` pixel_values.
 * Call before decoding any image. `where` names the checkpoint.
 */
export function checkPreprocessForModel(cfg: PreprocessConfig, channels: number, size: number | [number, number], where: string): void {
  const [sh, sw] = typeof size === 'number' ? [size, size] : size;
  if (cfg.channels !== channels || cfg.height !== sh || cfg.width !== sw) {
    const src = cfg.kind === 'hf' ? `preprocessor_config.json (${cfg.doCenterCrop ? 'crop_size' : 'size'})` : 'pretrained_cfg.input_size';
    throw new VitkitError(
      `Expected preprocessing to ${channels} x ${sh} x ${sw} pixel_values (the model input) for ${where} but ${src} gives ${cfg.channels} x ${cfg.height} x ${cfg.width}`,
    );
  }
}

/**
 * timm's `resolve_data_config(pretrained_cfg=...)` for a model with `imgSize` and `inChans`.
 * The model's img_size wins over pretrained_cfg.input_size (a model created at another resolution
 * is fed at its own); absent fields take timm's defaults.
 */
export function preprocessFromTimm(pretrainedCfg: Record<string, unknown> | undefined, imgSize: number | [number, number], inChans: number): PreprocessConfig {
  const cfg = pretrainedCfg ?? {};
  if (!isObj(cfg)) throw expected('an object', 'pretrained_cfg', cfg);
  const channels = checkChannels(inChans, 'the timm preprocessing');
  let height = 224;
  let width = 224;
  const inputSize = cfg['input_size'];
  if (Array.isArray(inputSize) && inputSize.length === 3) {
    height = posInt(inputSize[1], 'pretrained_cfg.input_size[1]');
    width = posInt(inputSize[2], 'pretrained_cfg.input_size[2]');
  } else if (inputSize !== undefined && inputSize !== null) {
    throw expected('[channels, height, width]', 'pretrained_cfg.input_size', inputSize);
  }
  if (Array.isArray(imgSize)) {
    height = posInt(imgSize[0], 'the timm image height');
    width = posInt(imgSize[1], 'the timm image width');
  } else if (imgSize !== undefined && imgSize !== null && imgSize !== 0) {
    height = width = posInt(imgSize, 'the timm image size');
  }
  const interpolation = cfg['interpolation'] ? filterFrom(cfg['interpolation'], 'pretrained_cfg.interpolation') : 'bicubic';
  const mean = perChannel(cfg['mean'] !== undefined && cfg['mean'] !== null ? numList(cfg['mean'], 'pretrained_cfg.mean') : IMAGENET_DEFAULT_MEAN, channels, 'pretrained_cfg.mean');
  const std = positiveStd(perChannel(cfg['std'] !== undefined && cfg['std'] !== null ? numList(cfg['std'], 'pretrained_cfg.std') : IMAGENET_DEFAULT_STD, channels, 'pretrained_cfg.std'), 'pretrained_cfg.std');
  let cropPct = DEFAULT_CROP_PCT;
  if (cfg['crop_pct'] !== undefined && cfg['crop_pct'] !== null) {
    const c = cfg['crop_pct'];
    if (typeof c !== 'number' || !(c > 0) || c > 10) throw expected('a crop fraction in (0, 10]', 'pretrained_cfg.crop_pct', c);
    cropPct = c;
  }
  let cropMode: PreprocessConfig['cropMode'] = 'center';
  if (cfg['crop_mode']) {
    const m = cfg['crop_mode'];
    if (m !== 'center' && m !== 'squash' && m !== 'border') throw expected('center, squash or border', 'pretrained_cfg.crop_mode', m);
    cropMode = m;
  }
  checkResizeSide(Math.floor(height / cropPct), Math.floor(width / cropPct), height, width, `pretrained_cfg.crop_pct ${cropPct} (resize to floor(${height} / crop_pct))`);
  return {
    kind: 'timm',
    channels,
    height,
    width,
    mean,
    std,
    interpolation,
    cropPct,
    cropMode,
    doResize: true,
    doRescale: true,
    rescaleFactor: 1 / 255,
    doNormalize: true,
    doCenterCrop: true,
    resizeHeight: Math.floor(height / cropPct),
    resizeWidth: Math.floor(width / cropPct),
  };
}

function sizeDict(v: unknown, what: string): { height?: number; width?: number; shortest?: number } {
  if (typeof v === 'number') return { height: posInt(v, what), width: v };
  if (!isObj(v)) throw expected('an object like {"height": 224, "width": 224} or {"shortest_edge": 224}', what, v);
  if (v['height'] !== undefined || v['width'] !== undefined) {
    return { height: posInt(v['height'], `${what}.height`), width: posInt(v['width'], `${what}.width`) };
  }
  if (v['shortest_edge'] !== undefined) {
    if (v['longest_edge'] !== undefined) throw expected('no longest_edge (unsupported)', what, v);
    return { shortest: posInt(v['shortest_edge'], `${what}.shortest_edge`) };
  }
  throw expected('height/width or shortest_edge', what, v);
}

/**
 * A transformers image processor config (preprocessor_config.json) for a model with `imgSize` and
 * `inChans`. Absent fields take ViTImageProcessor's defaults (size imgSize x imgSize, bilinear,
 * rescale 1/255, normalize with mean = std = 0.5, no center crop).
 */
export function preprocessFromHf(processorCfg: Record<string, unknown> | undefined, imgSize: number, inChans: number): PreprocessConfig {
  const cfg = processorCfg ?? {};
  if (!isObj(cfg)) throw expected('an object', 'preprocessor_config.json', cfg);
  const channels = checkChannels(inChans, 'the Hugging Face preprocessing');
  const def = imgSize ? posInt(imgSize, 'the Hugging Face image size') : 224;
  const bool = (key: string, d: boolean): boolean => {
    const v = cfg[key];
    if (v === undefined || v === null) return d;
    if (typeof v !== 'boolean') throw expected('true or false', `preprocessor_config.json ${key}`, v);
    return v;
  };
  const doResize = bool('do_resize', true);
  const doRescale = bool('do_rescale', true);
  const doNormalize = bool('do_normalize', true);
  const doCenterCrop = bool('do_center_crop', false);
  const size = cfg['size'] !== undefined && cfg['size'] !== null ? sizeDict(cfg['size'], 'preprocessor_config.json size') : { height: def, width: def };
  let resizeMode: 'exact' | 'shortest_edge' = 'exact';
  let resizeHeight: number;
  let resizeWidth: number;
  if (size.shortest !== undefined) {
    resizeMode = 'shortest_edge';
    resizeHeight = resizeWidth = size.shortest;
  } else {
    resizeHeight = size.height!;
    resizeWidth = size.width!;
  }
  let height = resizeHeight;
  let width = resizeWidth;
  if (doCenterCrop) {
    const cs = cfg['crop_size'] !== undefined && cfg['crop_size'] !== null ? sizeDict(cfg['crop_size'], 'preprocessor_config.json crop_size') : { height: def, width: def };
    if (cs.shortest !== undefined) throw expected('crop_size with height and width', 'preprocessor_config.json crop_size', cfg['crop_size']);
    height = cs.height!;
    width = cs.width!;
  } else if (resizeMode === 'shortest_edge' || !doResize) {
    throw new VitkitError(
      `Expected do_center_crop for preprocessor_config.json with ${doResize ? 'size.shortest_edge' : 'do_resize false'} (the output size would depend on the image) but received do_center_crop ${doCenterCrop}`,
    );
  }
  if (doResize) checkResizeSide(resizeHeight, resizeWidth, def, def, 'preprocessor_config.json size');
  checkResizeSide(height, width, def, def, doCenterCrop ? 'preprocessor_config.json crop_size' : 'preprocessor_config.json size');
  const rf = cfg['rescale_factor'] ?? 1 / 255;
  if (typeof rf !== 'number' || !(rf > 0) || !Number.isFinite(rf)) throw expected('a positive number', 'preprocessor_config.json rescale_factor', rf);
  const interpolation = cfg['resample'] !== undefined && cfg['resample'] !== null ? filterFrom(cfg['resample'], 'preprocessor_config.json resample') : 'bilinear';
  const mean = perChannel(
    cfg['image_mean'] !== undefined && cfg['image_mean'] !== null ? numList(cfg['image_mean'], 'preprocessor_config.json image_mean') : IMAGENET_STANDARD_MEAN,
    channels,
    'preprocessor_config.json image_mean',
  );
  const std = positiveStd(perChannel(
    cfg['image_std'] !== undefined && cfg['image_std'] !== null ? numList(cfg['image_std'], 'preprocessor_config.json image_std') : IMAGENET_STANDARD_STD,
    channels,
    'preprocessor_config.json image_std',
  ), 'preprocessor_config.json image_std');
  const type = typeof cfg['image_processor_type'] === 'string' ? (cfg['image_processor_type'] as string) : '';
  const hfBackend: 'pil' | 'torchvision' = type.endsWith('Pil') || type === 'ViTFeatureExtractor' ? 'pil' : 'torchvision';
  return {
    kind: 'hf',
    channels,
    height,
    width,
    mean,
    std,
    interpolation,
    cropPct: 1,
    cropMode: 'center',
    doResize,
    doRescale,
    rescaleFactor: rf,
    doNormalize,
    doCenterCrop,
    resizeHeight,
    resizeWidth,
    resizeMode,
    hfBackend,
  };
}

// ---------------------------------------------------------------------------------------------
// geometry

/** Python 3 round(): half to even. */
export function pyRound(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** torchvision `_compute_resized_output_size(size=[s])`: shorter side to s, longer side truncated. Returns [h, w]. */
export function shorterSideSize(h: number, w: number, s: number): [number, number] {
  const [short, long] = w <= h ? [w, h] : [h, w];
  if (short === s) return [h, w];
  const newLong = Math.trunc((s * long) / short);
  return w <= h ? [newLong, s] : [s, newLong];
}

function padImage(img: RawImage, left: number, top: number, right: number, bottom: number, fill: number[]): RawImage {
  const C = img.channels;
  const W = img.width + left + right;
  const H = img.height + top + bottom;
  const out = new Uint8Array(W * H * C);
  for (let i = 0; i < W * H; i++) for (let c = 0; c < C; c++) out[i * C + c] = fill[c] ?? 0;
  for (let y = 0; y < img.height; y++) {
    out.set(img.data.subarray(y * img.width * C, (y + 1) * img.width * C), ((y + top) * W + left) * C);
  }
  return { data: out, width: W, height: H, channels: C };
}


/** torchvision CenterCrop / timm CenterCropOrPad (round-half-even offsets) or HF center_crop (floor offsets). */
function centerCrop(img: RawImage, ch: number, cw: number, fill: number[], offsets: 'round' | 'floor'): RawImage {
  if (cw > img.width || ch > img.height) {
    const l = cw > img.width ? Math.floor((cw - img.width) / 2) : 0;
    const t = ch > img.height ? Math.floor((ch - img.height) / 2) : 0;
    const r = cw > img.width ? Math.floor((cw - img.width + 1) / 2) : 0;
    const b = ch > img.height ? Math.floor((ch - img.height + 1) / 2) : 0;
    img = padImage(img, l, t, r, b, fill);
    if (img.width === cw && img.height === ch) return img;
  }
  const top = offsets === 'round' ? pyRound((img.height - ch) / 2) : Math.floor((img.height - ch) / 2);
  const left = offsets === 'round' ? pyRound((img.width - cw) / 2) : Math.floor((img.width - cw) / 2);
  if (top === 0 && left === 0 && img.width === cw && img.height === ch) return img;
  return cropImage(img, top, left, ch, cw);
}

function resizeHW(img: RawImage, h: number, w: number, filter: Filter): RawImage {
  if (img.width === w && img.height === h) return img;
  return resizePil(img, w, h, filter);
}

/** timm's ResizeKeepRatio (no randomness): sizes round(x / ratio), ratio mixing max/min side ratios by `longest`. */
function keepRatioSize(h: number, w: number, th: number, tw: number, longest: number): [number, number] {
  const rh = h / th;
  const rw = w / tw;
  const ratio = Math.max(rh, rw) * longest + Math.min(rh, rw) * (1 - longest);
  return [pyRound(h / ratio), pyRound(w / ratio)];
}

function geometryTimm(img: RawImage, cfg: PreprocessConfig): RawImage {
  const sh = Math.floor(cfg.height / cfg.cropPct);
  const sw = Math.floor(cfg.width / cfg.cropPct);
  if (cfg.cropMode === 'squash') {
    img = resizeHW(img, sh, sw, cfg.interpolation);
    return centerCrop(img, cfg.height, cfg.width, [0, 0, 0], 'round');
  }
  if (cfg.cropMode === 'border') {
    const [h, w] = keepRatioSize(img.height, img.width, sh, sw, 1.0);
    img = resizeHW(img, h, w, cfg.interpolation);
    const fill = cfg.mean.map((m) => pyRound(255 * m));
    return centerCrop(img, cfg.height, cfg.width, fill, 'round');
  }
  if (sh === sw) {
    const [h, w] = shorterSideSize(img.height, img.width, sh);
    img = resizeHW(img, h, w, cfg.interpolation);
  } else {
    // timm builds ResizeKeepRatio(scale_size) without passing interpolation: bilinear
    const [h, w] = keepRatioSize(img.height, img.width, sh, sw, 0.0);
    img = resizeHW(img, h, w, 'bilinear');
  }
  return centerCrop(img, cfg.height, cfg.width, [0, 0, 0], 'round');
}

function geometryHf(img: RawImage, cfg: PreprocessConfig): RawImage {
  if (cfg.doResize) {
    let [h, w] = [cfg.resizeHeight, cfg.resizeWidth];
    if (cfg.resizeMode === 'shortest_edge') [h, w] = shorterSideSize(img.height, img.width, cfg.resizeHeight);
    if (h !== img.height || w !== img.width) {
      const torch = (cfg.hfBackend ?? 'torchvision') === 'torchvision';
      if (torch && (cfg.interpolation === 'bilinear' || cfg.interpolation === 'bicubic')) {
        img = resizeTorchU8(img, w, h, cfg.interpolation);
      } else if (torch && cfg.interpolation === 'lanczos') {
        img = resizeTorchU8(img, w, h, 'bicubic'); // transformers' torchvision backend substitutes bicubic
      } else {
        img = resizePil(img, w, h, cfg.interpolation);
      }
    }
  }
  if (cfg.doCenterCrop) img = centerCrop(img, cfg.height, cfg.width, [0, 0, 0], 'floor');
  if (img.width !== cfg.width || img.height !== cfg.height) {
    throw expected(`a ${cfg.height}x${cfg.width} image after resize and crop`, 'the Hugging Face preprocessing', `${img.height}x${img.width}`);
  }
  return img;
}

/** Throws a one-line VitkitError naming the field of an invalid PreprocessConfig. */
export function checkConfig(cfg: PreprocessConfig): void {
  if (!cfg || (cfg.kind !== 'timm' && cfg.kind !== 'hf')) throw expected('a PreprocessConfig with kind timm or hf', 'the preprocessing config', cfg?.kind);
  if (cfg.channels !== 1 && cfg.channels !== 3) throw expected('1 or 3', 'the preprocessing channels', cfg.channels);
  posInt(cfg.height, 'the preprocessing height');
  posInt(cfg.width, 'the preprocessing width');
  if (cfg.mean.length !== cfg.channels) throw expected(`${cfg.channels} values`, 'the preprocessing mean', cfg.mean);
  if (cfg.std.length !== cfg.channels) throw expected(`${cfg.channels} values`, 'the preprocessing std', cfg.std);
  if (!FILTERS.includes(cfg.interpolation)) throw expected(`one of ${FILTERS.join(', ')}`, 'the preprocessing interpolation', cfg.interpolation);
  if (cfg.kind === 'timm' && !(cfg.cropPct > 0)) throw expected('a positive crop_pct', 'the preprocessing crop_pct', cfg.cropPct);
}

/** Decoded, resized and cropped 8-bit pixels (cfg.channels channels), before any float conversion. */
export function geometry(img: RawImage, cfg: PreprocessConfig): RawImage {
  checkConfig(cfg);
  return cfg.kind === 'timm' ? geometryTimm(img, cfg) : geometryHf(img, cfg);
}

/** 8-bit (H, W, C) -> normalized float32 (C, H, W), with the float arithmetic of each library. */
export function toPixelValues(img: RawImage, cfg: PreprocessConfig, out?: Float32Array, offset = 0): Float32Array {
  const { width: W, height: H, channels: C } = img;
  const n = W * H;
  const dst = out ?? new Float32Array(C * n);
  const f = Math.fround;
  // per-channel lookup table of the 256 possible values
  const lut = new Float32Array(256 * C);
  for (let c = 0; c < C; c++) {
    for (let v = 0; v < 256; v++) {
      let x: number;
      if (cfg.kind === 'timm') {
        // ToTensor: float32 x / 255; Normalize: (x - mean) / std in float32
        x = f(v / 255);
        x = f(f(x - f(cfg.mean[c])) / f(cfg.std[c]));
      } else if (cfg.doRescale && cfg.doNormalize && (cfg.hfBackend ?? 'torchvision') === 'torchvision') {
        // fused: normalize(x, mean / rescale_factor, std / rescale_factor) in float32
        x = f(f(v - f(cfg.mean[c] * (1 / cfg.rescaleFactor))) / f(cfg.std[c] * (1 / cfg.rescaleFactor)));
      } else {
        x = v;
        if (cfg.doRescale) x = f(x * cfg.rescaleFactor);
        if (cfg.doNormalize) x = f(f(x - f(cfg.mean[c])) / f(cfg.std[c]));
      }
      lut[c * 256 + v] = x;
    }
  }
  for (let c = 0; c < C; c++) {
    const base = offset + c * n;
    const l = c * 256;
    for (let i = 0; i < n; i++) dst[base + i] = lut[l + img.data[i * C + c]];
  }
  return dst;
}
