import { imageOptions } from './image_options.js';
import { Command } from 'commander';
import { VitkitError } from '../errors.js';
import { IMAGE_EXTENSIONS } from '../io/image.js';
import { collectImages } from '../embed/embed.js';
import { preprocessBatch } from '../io/preprocess.js';
import { Tensor } from '../tensor.js';
import { softmax, topK } from '../nn/functional.js';
import { deviceOption, loadForInference, parseIntOpt } from './common.js';
import { runnerFor, type DeviceName } from '../models/runner.js';
import { imgHW } from '../models/config.js';
import { imageProgress } from './progress.js';

export interface Prediction {
  image: string;
  top: { index: number; label: string; score: number }[];
}

/** Classify image files: the top-k classes with probabilities, per image. */
export async function predictImages(modelSource: string, images: string[], k = 5, batchSize = 8, opts: { randomWeights?: boolean; device?: DeviceName; onProgress?: (done: number, total: number) => void } = {}): Promise<Prediction[]> {
  const { model, preprocess, labels } = loadForInference(modelSource, { randomWeights: opts.randomWeights ?? false, command: 'predict' });
  const runner = await runnerFor(model, opts.device ?? 'cpu');
  const K = model.config.num_classes;
  const out: Prediction[] = [];
  const { in_chans: C } = model.config;
  opts.onProgress?.(0, images.length);
  for (let i = 0; i < images.length; i += batchSize) {
    const batch = images.slice(i, i + batchSize);
    const pixels = await preprocessBatch(batch, preprocess);
    const logits = await runner.forward(new Tensor([batch.length, C, ...imgHW(model.config)], pixels));
    const probs = softmax(logits.data, batch.length, K);
    for (let b = 0; b < batch.length; b++) {
      const row = probs.subarray(b * K, (b + 1) * K);
      const bad = row.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) throw new VitkitError(`Expected finite class probabilities from model ${modelSource} for image ${batch[b]} but received ${row[bad]} for class ${bad}`);
      out.push({ image: batch[b]!, top: topK(row, Math.min(k, K)).map((j) => ({ index: j, label: labels[j]!, score: row[j]! })) });
    }
    opts.onProgress?.(out.length, images.length);
  }
  runner.release();
  return out;
}

export function predictCommand(): Command {
  return imageOptions(deviceOption(new Command('predict')))
    .description('classify images with a checkpoint directory or preset: top-k labels with probabilities')
    .requiredOption('-m, --model <dir|preset>', 'checkpoint directory (timm or Hugging Face layout) or preset name, or a Hub repo org/name[@revision] (fetched into the Hugging Face cache)')
    .option('-k, --top-k <k>', 'number of classes to show', parseIntOpt('--top-k'), 5)
    .option('-b, --batch-size <n>', 'images per forward pass', parseIntOpt('--batch-size'), 8)
    .option('--json', 'print [{"image", "top": [{"index", "label", "score"}]}] (score: the softmax probability)')
    .option('--random-weights', 'allow a preset name without weights (random initialization)')
    .argument('<images...>', `image files or folders, searched recursively (${IMAGE_EXTENSIONS.join(', ')})`)
    .action(async (inputs: string[], o: { model: string; topK: number; batchSize: number; json?: boolean; randomWeights?: boolean; device: DeviceName }) => {
      const images = collectImages(inputs);
      const bar = imageProgress('predict');
      let preds: Prediction[];
      try {
        preds = await predictImages(o.model, images, o.topK, o.batchSize, { randomWeights: o.randomWeights ?? false, device: o.device, onProgress: bar.update });
      } finally {
        bar.stop();
      }
      if (o.json) {
        console.log(JSON.stringify(preds));
        return;
      }
      for (const p of preds) {
        console.log(p.image);
        for (const t of p.top) console.log(`  ${(t.score * 100).toFixed(2).padStart(6)}%  ${t.label}  (${t.index})`);
      }
    });
}
