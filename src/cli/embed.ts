import { imageOptions } from './image_options.js';
import { Command } from 'commander';
import path from 'node:path';
import { cleanStaleTemps } from '../io/files.js';
import { collectImages, embedFiles, embedFormat, writeEmbeddings } from '../embed/embed.js';
import { checkOutput, deviceOption, loadForInference, parseIntOpt, stopOnSignal } from './common.js';
import type { DeviceName } from '../models/runner.js';
import { imageProgress } from './progress.js';

export function embedCommand(): Command {
  return imageOptions(deviceOption(new Command('embed')))
    .description('pre-logits embeddings of images (files and/or folders, searched recursively) to a .safetensors or .jsonl file')
    .requiredOption('-m, --model <dir|preset>', 'checkpoint directory or preset name, or a Hub repo org/name[@revision] (fetched into the Hugging Face cache)')
    .requiredOption('-o, --out <file>', 'output: .safetensors (tensor "embeddings" (n, D), file names in the metadata "names") or .jsonl ({"name", "embedding"} per line)')
    .option('--normalize', 'L2-normalize each embedding')
    .option('-b, --batch-size <n>', 'images per forward pass', parseIntOpt('--batch-size'), 8)
    .option('--overwrite', 'replace the output file if it exists')
    .option('--random-weights', 'allow a preset name without weights (random initialization)')
    .argument('<images...>', 'image files or folders')
    .action(async (inputs: string[], o: { model: string; out: string; normalize?: boolean; batchSize: number; overwrite?: boolean; randomWeights?: boolean; device: DeviceName }) => {
      embedFormat(o.out);
      checkOutput(o.out, o.overwrite);
      cleanStaleTemps(path.dirname(path.resolve(o.out)));
      stopOnSignal('embed', o.out);
      const files = collectImages(inputs);
      const loaded = loadForInference(o.model, { randomWeights: o.randomWeights ?? false, command: 'embed' });
      const bar = imageProgress('embed');
      let embedded: { data: Float32Array; dim: number };
      try {
        embedded = await embedFiles(loaded, files, { normalize: o.normalize ?? false, batchSize: o.batchSize, device: o.device, onProgress: bar.update });
      } finally {
        bar.stop();
      }
      const { data, dim } = embedded;
      writeEmbeddings(o.out, files, data, dim, { model: o.model, normalized: o.normalize ?? false }, o.overwrite ?? false);
      console.log(`wrote ${files.length} embeddings of ${dim} values${o.normalize ? ' (L2-normalized)' : ''} to ${o.out}`);
    });
}
