/**
 * `vitkit detect --model <dir | hub id> [--threshold 0.5] [--top-k N] [--shortest-edge S
 * --longest-edge M] [--json] [--out dir] <images...>`: YOLOS object detection. Prints the detections
 * per image (or, with --json, `[{file, width, height, detections: [{label, label_id, score, box}]}]`);
 * --out writes `<name>.png` with the boxes drawn and `detections.json`.
 * Also the detection side of `vitkit eval --task detect`: COCO mAP on a COCO folder.
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { VitkitError } from '../errors.js';
import { IMAGE_EXTENSIONS, loadImage } from '../io/image.js';
import { collectImages } from '../embed/embed.js';
import { writeFileAtomic } from '../io/files.js';
import { parseFloatOpt, parseIntOpt } from './common.js';
import { loadYolos } from '../detect/load.js';
import { detect, type DetectionResult } from '../detect/detect.js';
import { writeDetectionsPng } from '../detect/draw.js';
import { readCocoFolder } from '../detect/coco_data.js';
import { cocoEvaluate, type CocoDetection, type CocoStats } from '../detect/coco_eval.js';

interface DetectOpts { model: string; threshold: number; topK?: number; shortestEdge?: number; longestEdge?: number; batchSize: number; json?: boolean; out?: string; overwrite?: boolean }

export function detectCommand(): Command {
  return new Command('detect')
    .description('detect objects with a YOLOS checkpoint (hustvl or Hugging Face layout): boxes, labels and scores; --out draws them')
    .requiredOption('-m, --model <dir>', 'YOLOS checkpoint directory (yolos_config.json or config.json + model.safetensors) or Hub id')
    .option('--threshold <p>', 'keep detections scoring at least this (0: every det token)', parseFloatOpt('--threshold', 0, 1), 0.5)
    .option('-k, --top-k <n>', 'at most n detections per image', parseIntOpt('--top-k'))
    .option('--shortest-edge <px>', 'resize the short side to this (default: the checkpoint\'s preprocessor, else 800)', parseIntOpt('--shortest-edge'))
    .option('--longest-edge <px>', 'unless the long side would pass this (default: the checkpoint\'s, else 1333)', parseIntOpt('--longest-edge'))
    .option('-b, --batch-size <n>', 'images per forward pass (more than 1 pads to the largest: YOLOS ignores the padding mask, results differ slightly)', parseIntOpt('--batch-size'), 1)
    .option('--json', 'print [{"file", "width", "height", "detections": [{"label", "label_id", "score", "box"}]}]')
    .option('-o, --out <dir>', 'write <image name>.png with the boxes drawn and detections.json here')
    .option('--overwrite', 'replace files already in --out')
    .argument('<images...>', `image files or folders, searched recursively (${IMAGE_EXTENSIONS.join(', ')})`)
    .action(async (inputs: string[], o: DetectOpts) => {
      const images = collectImages(inputs);
      const { model, preprocess } = loadYolos(o.model);
      const res = await detect(model, images, {
        threshold: o.threshold, batchSize: o.batchSize, preprocess,
        ...(o.topK !== undefined ? { topK: o.topK } : {}), ...(o.shortestEdge !== undefined ? { shortestEdge: o.shortestEdge } : {}),
        ...(o.longestEdge !== undefined ? { longestEdge: o.longestEdge } : {}),
      });
      if (o.out) await writeOut(o.out, res, o.overwrite);
      if (o.json) { console.log(JSON.stringify(res)); return; }
      for (const r of res) {
        console.log(`${r.file} (${r.width}x${r.height}): ${r.detections.length} detection${r.detections.length === 1 ? '' : 's'}`);
        for (const d of r.detections) console.log(`  ${(d.score * 100).toFixed(1).padStart(5)}%  ${d.label} (${d.label_id})  [${d.box.map((v) => v.toFixed(1)).join(', ')}]`);
      }
      if (o.out) console.log(`wrote ${res.length} picture${res.length === 1 ? '' : 's'} and detections.json to ${o.out}`);
    });
}

async function writeOut(out: string, res: DetectionResult[], overwrite: boolean | undefined): Promise<void> {
  if (existsSync(out) && !statSync(out).isDirectory()) throw new VitkitError(`--out ${out} exists and is not a directory`);
  mkdirSync(out, { recursive: true });
  const names = new Map<string, number>();
  const files = res.map((r) => {
    const base = path.basename(r.file).replace(/\.[^.]+$/, '');
    const n = names.get(base) ?? 0;
    names.set(base, n + 1);
    return path.join(out, `${n ? `${base}_${n}` : base}.png`);
  });
  const json = path.join(out, 'detections.json');
  for (const f of [...files, json]) if (existsSync(f) && !overwrite) throw new VitkitError(`Output ${f} already exists; pass --overwrite to replace it`);
  for (let i = 0; i < res.length; i++) await writeDetectionsPng(files[i]!, await loadImage(res[i]!.file, 3), res[i]!.detections, { overwrite: true });
  writeFileAtomic(json, JSON.stringify(res, null, 1) + '\n', { overwrite: true, what: 'detections JSON' });
}

/** COCO evaluation of a YOLOS checkpoint on a COCO folder (threshold 0: every det token's best class, as YOLOS evaluates). */
export async function evalDetect(o: { model: string; data: string; shortestEdge?: number; longestEdge?: number }): Promise<{ model: string; data: string; images: number; coco: CocoStats }> {
  const { model, preprocess } = loadYolos(o.model);
  const folder = readCocoFolder(o.data);
  const maxCat = Math.max(-1, ...folder.categories.map((c) => c.id));
  if (maxCat >= model.config.numClasses) {
    throw new VitkitError(`${folder.annotationFile}: category id ${maxCat} does not fit the model's ${model.config.numClasses} classes (ids are class indices)`);
  }
  const res = await detect(model, folder.images.map((im) => im.file), {
    threshold: 0, preprocess,
    ...(o.shortestEdge !== undefined ? { shortestEdge: o.shortestEdge } : {}), ...(o.longestEdge !== undefined ? { longestEdge: o.longestEdge } : {}),
  });
  const dets: CocoDetection[] = [];
  res.forEach((r, i) => {
    for (const d of r.detections) dets.push({ image_id: folder.images[i]!.id, category_id: d.label_id, score: d.score, bbox: [d.box[0], d.box[1], d.box[2] - d.box[0], d.box[3] - d.box[1]] });
  });
  return { model: o.model, data: o.data, images: res.length, coco: cocoEvaluate(folder.gt, dets) };
}

export function formatCoco(s: CocoStats): string[] {
  const rows: [string, keyof CocoStats][] = [
    ['Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]', 'AP'], ['Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ]', 'AP50'],
    ['Average Precision  (AP) @[ IoU=0.75      | area=   all | maxDets=100 ]', 'AP75'], ['Average Precision  (AP) @[ IoU=0.50:0.95 | area= small | maxDets=100 ]', 'APs'],
    ['Average Precision  (AP) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ]', 'APm'], ['Average Precision  (AP) @[ IoU=0.50:0.95 | area= large | maxDets=100 ]', 'APl'],
    ['Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ]', 'AR1'], ['Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets= 10 ]', 'AR10'],
    ['Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]', 'AR100'], ['Average Recall     (AR) @[ IoU=0.50:0.95 | area= small | maxDets=100 ]', 'ARs'],
    ['Average Recall     (AR) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ]', 'ARm'], ['Average Recall     (AR) @[ IoU=0.50:0.95 | area= large | maxDets=100 ]', 'ARl'],
  ];
  return rows.map(([l, k]) => ` ${l} = ${s[k].toFixed(3)}`);
}
