/** `vitkit search`: rank the images of a `vitkit index` by a text (or an image) query. */
import type { DeviceName } from '../models/runner.js';
import { Command } from 'commander';
import { VitkitError } from '../errors.js';
import { loadClip } from '../clip/load.js';
import { readClipIndex } from '../clip/image_index.js';
import { deviceOption, parseIntOpt } from './common.js';

export function searchCommand(): Command {
  return deviceOption(new Command('search'))
    .description('text-to-image (or --image: image-to-image) search over an index made by vitkit index')
    .requiredOption('-x, --index <index.safetensors>', 'index file from vitkit index')
    .option('-m, --model <dir>', 'CLIP checkpoint (default: the one the index was built with), or a Hub repo org/name[@revision] (fetched into the Hugging Face cache)')
    .option('--image <file>', 'query by an image instead of a text')
    .option('-k, --top-k <k>', 'results to show', parseIntOpt('--top-k'), 10)
    .option('--json', 'print [{"path", "index", "score"}]')
    .argument('[query...]', 'the text query')
    .action(async (words: string[], o: { index: string; model?: string; image?: string; topK: number; json?: boolean; device: DeviceName }) => {
      const text = words.join(' ').trim();
      if ((text === '') === (o.image === undefined)) throw new VitkitError('Expected a text query or --image <file> (exactly one)');
      const index = readClipIndex(o.index);
      const clip = { ...loadClip(o.model ?? index.model), device: o.device };
      if (clip.model.config.embed_dim !== index.dim) throw new VitkitError(`The model's embedding width ${clip.model.config.embed_dim} differs from the index's ${index.dim}; use the model the index was built with (${index.model})`);
      const hits = o.image !== undefined ? await index.searchImage(clip, o.image, o.topK) : index.search(clip, text, o.topK);
      if (o.json) { console.log(JSON.stringify(hits)); return; }
      for (const h of hits) console.log(`${h.score.toFixed(4)}  ${h.path}`);
    });
}
