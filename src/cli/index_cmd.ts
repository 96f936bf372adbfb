/** `vitkit index`: embed a folder of images with a CLIP checkpoint for `vitkit search` (incremental). */
import type { DeviceName } from '../models/runner.js';
import { Command } from 'commander';
import { existsSync } from 'node:fs';
import { VitkitError } from '../errors.js';
import { collectImages } from '../embed/embed.js';
import { loadClip } from '../clip/load.js';
import { buildClipIndex, readClipIndex, INDEX_FORMAT } from '../clip/image_index.js';
import { readSafetensors } from '../io/safetensors.js';
import { deviceOption, parseIntOpt, stopOnSignal } from './common.js';
import { cleanStaleTemps } from '../io/files.js';
import path from 'node:path';
import { imageProgress } from './progress.js';

export function indexCommand(): Command {
  return deviceOption(new Command('index'))
    .description('embed images (files or folders, recursively) with a CLIP checkpoint into an index for vitkit search; re-indexing into the same file embeds only new or changed files')
    .requiredOption('-m, --model <dir>', 'CLIP checkpoint (open_clip hub layout or Hugging Face CLIPModel), or a Hub repo org/name[@revision] (fetched into the Hugging Face cache)')
    .requiredOption('-o, --out <index.safetensors>', 'index file (an existing vitkit index is updated in place)')
    .option('-b, --batch-size <n>', 'images per forward', parseIntOpt('--batch-size'), 32)
    .option('--overwrite', 'replace --out even if it is not a vitkit index')
    .argument('<images...>', 'image files or folders')
    .action(async (inputs: string[], o: { model: string; out: string; batchSize: number; overwrite?: boolean; device: DeviceName }) => {
      let previous;
      if (existsSync(o.out)) {
        const isIndex = (() => { try { return readSafetensors(o.out).metadata['format'] === INDEX_FORMAT; } catch { return false; } })();
        if (isIndex) previous = readClipIndex(o.out);
        else if (!o.overwrite) throw new VitkitError(`Output ${o.out} already exists and is not a vitkit CLIP index; pass --overwrite to replace it`);
      }
      cleanStaleTemps(path.dirname(path.resolve(o.out)));
      stopOnSignal('index', o.out);
      const images = collectImages(inputs);
      const clip = { ...loadClip(o.model), device: o.device };
      const bar = imageProgress('index');
      let built: Awaited<ReturnType<typeof buildClipIndex>>;
      try {
        built = await buildClipIndex(clip, o.model, images, previous, o.batchSize, bar.update);
      } finally {
        bar.stop();
      }
      const { index, embedded, reused } = built;
      index.save(o.out, { overwrite: true });
      console.log(`indexed ${index.size} images into ${o.out} (${embedded} embedded, ${reused} unchanged)`);
    });
}
