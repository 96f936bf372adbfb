/**
 * `vitkit reconstruct --model <MAE dir | hub id> [--mask-ratio r] [--seed N] [--out dir] [--json] <images...>`:
 * one PNG per image with the four panels of MAE's demo notebook — original, masked (removed
 * patches grey), reconstruction, reconstruction with the visible patches pasted back — and the
 * loss (MSE over the masked patches). Images are resized to the model's size (bicubic) and
 * normalised with ImageNet's mean / std (MNIST's for one-channel models; a Hugging Face
 * preprocessor_config.json's when the directory has one). With norm_pix_loss models the prediction
 * is per-patch normalised pixels: it is de-normalised with the visible patches' statistics (see
 * MaskedAutoencoder.pictures).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import sharp from 'sharp';
import { UsageError, VitkitError } from '../errors.js';
import { writeFileAtomic } from '../io/files.js';
import { preprocessImage, preprocessFromTimm } from '../io/preprocess.js';
import { IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD } from '../io/preprocess_pixels.js';
import { MNIST_PRETRAINED_CFG } from '../data/mnist.js';
import { Rng } from '../data/rng.js';
import { loadMae } from '../mae/load.js';
import type { MaskedAutoencoder } from '../mae/model.js';
import { parseIntOpt } from './common.js';

/** mean / std the model's pixel_values were normalised with */
export function maeNormalization(dir: string, model: MaskedAutoencoder): { mean: number[]; std: number[] } {
  const C = model.config.in_chans;
  const pp = path.join(dir, 'preprocessor_config.json');
  if (existsSync(pp)) {
    try {
      const j = JSON.parse(readFileSync(pp, 'utf8')) as { image_mean?: number[]; image_std?: number[] };
      if (Array.isArray(j.image_mean) && Array.isArray(j.image_std) && j.image_mean.length === C && j.image_std.length === C) return { mean: j.image_mean, std: j.image_std };
    } catch { /* fall back to the defaults below */ }
  }
  if (C === 1) return { mean: [...MNIST_PRETRAINED_CFG.mean], std: [...MNIST_PRETRAINED_CFG.std] };
  if (C === 3) return { mean: IMAGENET_DEFAULT_MEAN, std: IMAGENET_DEFAULT_STD };
  throw new VitkitError(`reconstruct shows images with 1 or 3 channels; ${dir} takes ${C}`);
}

/** the four panels (C, S, S) each -> one RGB image, panels side by side, scaled by an integer factor */
export function panelImage(panels: Float32Array[], C: number, S: number, mean: number[], std: number[], maskPixels: Float32Array | null): { data: Uint8Array; width: number; height: number } {
  const k = Math.max(1, Math.ceil(112 / S)), gap = 4, P = S * k;
  const width = panels.length * P + (panels.length - 1) * gap, height = P;
  const data = new Uint8Array(width * height * 3).fill(255); // (H, W, 3)
  panels.forEach((img, pi) => {
    for (let y = 0; y < P; y++) for (let x = 0; x < P; x++) {
      const sy = Math.floor(y / k), sx = Math.floor(x / k);
      const o = (y * width + pi * (P + gap) + x) * 3;
      for (let ch = 0; ch < 3; ch++) {
        const c = C === 1 ? 0 : ch;
        const i = (c * S + sy) * S + sx;
        let v = img[i]! * std[c]! + mean[c]!;
        if (pi === 1 && maskPixels && maskPixels[i] === 1) v = 0.5; // the masked panel: removed patches grey
        data[o + ch] = Math.round(Math.min(1, Math.max(0, v)) * 255);
      }
    }
  });
  return { data, width, height };
}

export interface ReconstructOptions {
  model: string;
  maskRatio?: number;
  seed: number;
  out: string;
  json?: boolean;
  overwrite?: boolean;
}

export async function reconstruct(images: string[], o: ReconstructOptions, log: (s: string) => void = (s) => console.log(s)): Promise<{ image: string; loss: number; png: string }[]> {
  if (o.maskRatio !== undefined && !(o.maskRatio >= 0 && o.maskRatio < 1)) throw new UsageError(`Expected a mask ratio in [0, 1) for --mask-ratio but received ${o.maskRatio}`);
  if (images.length === 0) throw new UsageError('Expected at least one image to reconstruct');
  const model = loadMae(o.model);
  const c = model.config, S = c.img_size, C = c.in_chans;
  const { mean, std } = maeNormalization(o.model, model);
  const pre = preprocessFromTimm({ input_size: [C, S, S], interpolation: 'bicubic', crop_pct: 1, crop_mode: 'squash', mean, std }, S, C);
  const pngs = images.map((f) => path.join(o.out, `${path.basename(f).replace(/\.[^.]+$/, '')}_mae.png`));
  for (const p of pngs) if (existsSync(p) && !o.overwrite) throw new VitkitError(`Output ${p} already exists; pass --overwrite to replace it`);
  mkdirSync(o.out, { recursive: true });
  const rng = new Rng(o.seed);
  const results: { image: string; loss: number; png: string }[] = [];
  for (let i = 0; i < images.length; i++) {
    const x = await preprocessImage(images[i]!, pre); // (C, S, S)
    const r = model.forward(x, [1, C, S, S], { rng, ...(o.maskRatio !== undefined ? { maskRatio: o.maskRatio } : {}) });
    const p = model.pictures(x, r.pred, r.masking);
    const img = panelImage([x, x, p.reconstruction, p.pasted], C, S, mean, std, p.maskPixels);
    const png = await sharp(Buffer.from(img.data), { raw: { width: img.width, height: img.height, channels: 3 } }).png().toBuffer();
    writeFileAtomic(pngs[i]!, png, { overwrite: true, what: 'PNG' });
    results.push({ image: images[i]!, loss: r.loss, png: pngs[i]! });
    if (o.json) log(JSON.stringify({ image: images[i], loss: r.loss, mask_ratio: o.maskRatio ?? c.mask_ratio, masked_patches: r.masking.L - r.masking.K, png: pngs[i] }));
    else log(`${images[i]}: loss ${r.loss.toFixed(4)} (${r.masking.L - r.masking.K} of ${r.masking.L} patches masked) -> ${pngs[i]}`);
  }
  return results;
}

export function reconstructCommand(): Command {
  return new Command('reconstruct')
    .description('MAE: mask random patches of each image and reconstruct them; writes original | masked | reconstruction | pasted panels as PNG')
    .requiredOption('-m, --model <dir|hub id>', 'masked-autoencoder checkpoint (facebookresearch/mae layout or Hugging Face ViTMAEForPreTraining)')
    .argument('<images...>', 'image files')
    .option('--mask-ratio <r>', 'fraction of patches masked, in [0, 1) (default: the model\'s)', (v: string) => {
      const n = Number(v);
      if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`Expected a number for --mask-ratio but received ${JSON.stringify(v)}`);
      return n;
    })
    .option('--seed <n>', 'seed of the random masking', parseIntOpt('--seed', 0), 0)
    .option('-o, --out <dir>', 'output directory', 'reconstructions')
    .option('--json', 'one JSON line per image')
    .option('--overwrite', 'replace existing PNGs')
    .action(async (images: string[], o: ReconstructOptions) => {
      await reconstruct(images, o);
    });
}
