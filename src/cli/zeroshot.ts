/** `vitkit zeroshot`: classify images against label names with a CLIP checkpoint, no training. */
import { imageOptions } from './image_options.js';
import type { DeviceName } from '../models/runner.js';
import { Command } from 'commander';
import { readTextFile } from '../io/files.js';
import { UsageError, VitkitError } from '../errors.js';
import { loadClip } from '../clip/load.js';
import { DEFAULT_TEMPLATES, zeroShotClassifier } from '../clip/zeroshot.js';
import { deviceOption, parseIntOpt } from './common.js';
import { collectImages } from '../embed/embed.js';
import { IMAGE_EXTENSIONS } from '../io/image.js';

interface ZeroshotOpts {
  model: string;
  labels?: string;
  labelsFile?: string;
  template: string[];
  topK: number;
  json?: boolean;
  device: DeviceName;
}

/** labels from --labels "a,b,c" or --labels-file (one a line; blank lines and # comments skipped) */
export function readLabels(o: Pick<ZeroshotOpts, 'labels' | 'labelsFile'>): string[] {
  if ((o.labels === undefined) === (o.labelsFile === undefined)) throw new UsageError('Expected exactly one of --labels "a,b,c" or --labels-file <file>');
  let labels: string[];
  if (o.labels !== undefined) labels = o.labels.split(',').map((s) => s.trim()).filter(Boolean);
  else {
    const text = readTextFile(o.labelsFile!, '--labels-file');
    labels = text.split('\n').map((s) => s.trim()).filter((s) => s && !s.startsWith('#'));
  }
  if (labels.length < 1) throw new VitkitError(`No labels in ${o.labels !== undefined ? '--labels' : o.labelsFile}`);
  return labels;
}

export function zeroshotCommand(): Command {
  return imageOptions(deviceOption(new Command('zeroshot')))
    .description("zero-shot classification with a CLIP checkpoint: probabilities of each label for each image (CLIP's prompt ensemble over --template)")
    .requiredOption('-m, --model <dir>', 'CLIP checkpoint (open_clip hub layout or Hugging Face CLIPModel), or a Hub repo org/name[@revision] (fetched into the Hugging Face cache)')
    .option('-l, --labels <a,b,c>', 'comma-separated label names')
    .option('--labels-file <file>', 'label names, one a line')
    .option('--template <text>', `prompt template with {} for the label; repeat for an ensemble (default "${DEFAULT_TEMPLATES[0]}")`, (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('-k, --top-k <k>', 'labels to show per image', parseIntOpt('--top-k'), 5)
    .option('--json', 'print [{"image", "top": [{"label", "index", "score"}]}] (score: the softmax probability)')
    .argument('<images...>', `image files or folders, searched recursively (${IMAGE_EXTENSIONS.join(', ')}); each frame of a multi-frame DICOM file is one image (file#frame=k)`)
    .action(async (inputs: string[], o: ZeroshotOpts) => {
      const labels = readLabels(o); // a missing label list is a usage error (exit 2), checked first
      const images = collectImages(inputs);
      const clip = { ...loadClip(o.model), device: o.device };
      const zs = zeroShotClassifier(clip, labels, o.template.length ? o.template : DEFAULT_TEMPLATES);
      const res = await zs.classify(images, o.topK);
      if (o.json) {
        console.log(JSON.stringify(images.map((image, i) => ({ image, top: res[i]!.map((p) => ({ label: p.label, index: p.index, score: p.score })) }))));
        return;
      }
      images.forEach((image, i) => {
        console.log(image);
        for (const p of res[i]!) console.log(`  ${(100 * p.score).toFixed(2).padStart(6)}%  ${p.label}`);
      });
    });
}
