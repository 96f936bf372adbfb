/**
 * Making one batch: gather samples, decode, augment (train) or apply the eval transform (val),
 * normalize into (B, C, H, W) float32, then mixup / cutmix. A pure function of the job, run on a
 * worker thread or inline; the job's seed fixes every random draw.
 */
import { VitkitError } from '../errors.js';
import { convertPixels, type RawImage } from '../io/image.js';
import { decodeImage, geometry, toPixelValues, type PreprocessConfig } from '../io/preprocess.js';
import { floatResizeMode, grayToPixelValues, normalizeGray, type GrayImage } from '../io/medical.js';
import type { Dataset } from './dataset.js';
import { type AugmentSpec, shiftU8, rrcFlipU8, shiftF32, rrcFlipF32, mixupBatch } from './augment.js';
import { Rng } from './rng.js';

/** How samples become model inputs: the shape, the eval transform and normalization, bad-file policy. */
export interface Pipeline {
  channels: 1 | 3;
  height: number;
  width: number;
  /** the model's eval transform (also supplies mean / std and the interpolation for crops) */
  preprocess: PreprocessConfig;
  /** what to do with an image file that cannot be decoded */
  onBadImage: 'skip' | 'error';
}

export interface BatchJob {
  /** which of the loader's datasets */
  split: 'train' | 'val';
  /** sample indices into that dataset, in batch order */
  indices: Int32Array;
  /** null: the eval transform */
  augment: AugmentSpec | null;
  /** seeds the batch's generator (see rng.batchRng) */
  seed: number;
}

export interface Batch {
  /** (B, C, H, W) */
  x: Float32Array;
  /** (B) class indices */
  y: Int32Array;
  /** (B, K) soft targets when mixup / cutmix is on, else null */
  soft: Float32Array | null;
  /** B: samples in this batch (fewer than requested when bad images were skipped) */
  size: number;
  /** image files skipped as unreadable */
  skipped: string[];
}

function u8Sample(ds: Extract<Dataset, { kind: 'u8' }>, i: number): RawImage {
  const per = ds.height * ds.width * ds.channels;
  return { data: ds.pixels.subarray(i * per, (i + 1) * per), width: ds.width, height: ds.height, channels: ds.channels };
}

/** An 8-bit image through the train augmentation or the eval transform, at the pipeline's size. */
function transformU8(img: RawImage, p: Pipeline, aug: AugmentSpec | null, rng: Rng): RawImage {
  if (img.channels !== p.channels) img = convertPixels(img.data, img.width, img.height, img.channels, p.channels);
  if (aug && aug.kind === 'rrc_flip') return rrcFlipU8(img, p.height, p.width, aug, p.preprocess.interpolation, rng);
  let out = geometry(img, p.preprocess);
  if (aug && aug.kind === 'shift') out = shiftU8(out, aug.pad, rng, 0);
  return out;
}

/**
 * A windowed gray image (DICOM, 16-bit gray PNG / TIFF: io/medical.ts) through the train augmentation
 * or the eval transform on float32, never rounded to 8 bits, into `x` at `offset`: (C, H, W).
 * - eval: grayToPixelValues, exactly preprocessImage's pixel_values (what `predict` feeds the model).
 * - shift: the eval transform, then shiftF32 with shiftU8's two draws; outside the image the
 *   normalised gray 0 (what shiftU8's fill 0 becomes through toPixelValues).
 * - rrc_flip: rrcFlipF32 on the decoded image, drawing rrcParams on the same (H, W) and then the flip,
 *   in rrcFlipU8's order, so a seed picks the same crop and flip as for an 8-bit file. The crop is
 *   resized with torch `interpolate(antialias=True)` (the pipeline's bilinear, else bicubic) where
 *   the 8-bit path uses PIL's Image.resize: torchvision's RandomResizedCrop does that on a float
 *   tensor, it is the resampler the float eval transform already uses (one float resize for train and
 *   eval), and PIL's resize would need 8-bit pixels. Values are not clamped (bicubic may overshoot
 *   [0, 1] slightly), as torch leaves them and as the eval transform does.
 */
function transformGray(g: GrayImage, p: Pipeline, aug: AugmentSpec | null, rng: Rng, x: Float32Array, offset: number): void {
  const cfg = p.preprocess.channels === p.channels ? p.preprocess : { ...p.preprocess, channels: p.channels };
  if (aug && aug.kind === 'rrc_flip') {
    const img = rrcFlipF32(g.data, 1, g.height, g.width, aug, rng, p.height, p.width, floatResizeMode(cfg.interpolation)); // (1, H, W)
    normalizeGray(img, cfg, x, offset);
  } else if (aug && aug.kind === 'shift') {
    const px = grayToPixelValues(g, 0, cfg); // (C, H, W)
    const fill = Array.from(normalizeGray(new Float32Array(1), cfg)); // (C,) gray 0 normalised
    x.set(shiftF32(px, p.channels, p.height, p.width, aug.pad, rng, fill), offset);
  } else {
    grayToPixelValues(g, 0, cfg, x, offset);
  }
}

export async function makeBatch(ds: Dataset, p: Pipeline, job: BatchJob): Promise<Batch> {
  const { channels: C, height: H, width: W } = p;
  const per = C * H * W;
  const rng = new Rng(job.seed);
  const aug = job.augment && job.augment.kind !== 'none' ? job.augment : null;
  const mixup = job.augment?.mixup ?? null;
  const skipped: string[] = [];
  let kept: number[];
  let x: Float32Array;
  if (ds.kind === 'files') {
    // decode all files concurrently (libvips threads), then transform in batch order
    const imgs = await Promise.all(
      Array.from(job.indices, async (i) => {
        try {
          return await decodeImage(ds.files[i]!, C); // DICOM / 16-bit gray: floats; else 8-bit pixels
        } catch (e) {
          if (p.onBadImage === 'error') {
            throw new VitkitError(`${(e as Error).message} (pass --on-bad-image skip to skip unreadable images with a warning)`);
          }
          skipped.push(ds.files[i]!);
          return null;
        }
      }),
    );
    kept = [];
    imgs.forEach((img, k) => { if (img) kept.push(k); });
    x = new Float32Array(kept.length * per);
    kept.forEach((k, b) => {
      const d = imgs[k]!;
      if ('gray' in d) transformGray(d.gray, p, aug, rng, x, b * per);
      else toPixelValues(transformU8(d.u8, p, aug, rng), p.preprocess, x, b * per);
    });
  } else {
    kept = Array.from(job.indices, (_, k) => k);
    x = new Float32Array(kept.length * per);
    if (ds.kind === 'u8') {
      for (let b = 0; b < kept.length; b++) toPixelValues(transformU8(u8Sample(ds, job.indices[b]!), p, aug, rng), p.preprocess, x, b * per);
    } else {
      if (ds.channels !== C || ds.height !== H || ds.width !== W) {
        throw new VitkitError(`Expected samples of shape (${C}, ${H}, ${W}) in ${ds.name} but received (${ds.channels}, ${ds.height}, ${ds.width})`);
      }
      for (let b = 0; b < kept.length; b++) {
        const i = job.indices[b]!;
        let s = ds.data.subarray(i * per, (i + 1) * per);
        if (aug?.kind === 'shift') {
          const fill: number[] = [];
          for (let c = 0; c < C; c++) {
            let m = Infinity;
            for (let q = c * H * W; q < (c + 1) * H * W; q++) if (s[q]! < m) m = s[q]!;
            fill.push(m);
          }
          s = shiftF32(s, C, H, W, aug.pad, rng, fill);
        } else if (aug?.kind === 'rrc_flip') {
          s = rrcFlipF32(s, C, H, W, aug, rng);
        }
        x.set(s, b * per);
      }
    }
  }
  const y = new Int32Array(kept.length);
  kept.forEach((k, b) => (y[b] = ds.labels[job.indices[k]!]!));
  let soft: Float32Array | null = null;
  if (mixup && y.length > 0) soft = mixupBatch(x, y, C, H, W, mixup, rng).soft;
  return { x, y, soft, size: y.length, skipped };
}
