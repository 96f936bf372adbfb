import { imageOptions } from './image_options.js';
import { Command } from 'commander';
import { buildSupport, classifyQueries } from '../embed/fewshot.js';
import { collectImages } from '../embed/embed.js';
import { deviceOption, loadForInference, parseIntOpt } from './common.js';
import type { DeviceName } from '../models/runner.js';

export function fewshotCommand(): Command {
  return imageOptions(deviceOption(new Command('fewshot')))
    .description('few-shot classification: each query gets the class whose prototype (mean normalized embedding of its support images) is nearest by cosine similarity')
    .requiredOption('-m, --model <dir|preset>', 'checkpoint directory or preset name, or a Hub repo org/name[@revision] (fetched into the Hugging Face cache)')
    .requiredOption('-s, --support <root>', 'support images: <root>/<class>/*.png|jpg|...')
    .option('-k, --top-k <k>', 'classes to show per query (text output)', parseIntOpt('--top-k'), 3)
    .option('-b, --batch-size <n>', 'images per forward pass', parseIntOpt('--batch-size'), 8)
    .option('--json', 'print [{"image", "prediction", "scores": [{"class", "score"}]}] (all classes, highest first)')
    .option('--random-weights', 'allow a preset name without weights (random initialization)')
    .argument('<queries...>', 'query image files or folders')
    .action(async (inputs: string[], o: { model: string; support: string; topK: number; batchSize: number; json?: boolean; randomWeights?: boolean; device: DeviceName }) => {
      const queries = collectImages(inputs);
      const loaded = loadForInference(o.model, { randomWeights: o.randomWeights ?? false, command: 'fewshot' });
      const support = await buildSupport(loaded, o.support, o.batchSize, o.device);
      const res = await classifyQueries(loaded, support, queries, o.batchSize, o.device);
      if (o.json) {
        console.log(JSON.stringify(res));
        return;
      }
      console.log(`support: ${support.classes.length} classes (${support.classes.map((c, k) => `${c} ${support.counts[k]}`).join(', ')})`);
      for (const r of res) {
        console.log(`${r.image}: ${r.prediction}`);
        for (const s of r.scores.slice(0, o.topK)) console.log(`  ${s.score.toFixed(4).padStart(8)}  ${s.class}`);
      }
    });
}
