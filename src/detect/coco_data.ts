/**
 * A COCO-format detection folder: `<dir>/annotations/*.json` (one file with images, categories and
 * annotations) and the images under `<dir>/images/` by their `file_name`. Category ids are the class
 * indices of the model's head. For training, each annotation becomes a normalised (cx, cy, w, h)
 * target; crowd regions, boxes of zero area and boxes outside the image are skipped with a count
 * (DETR's ConvertCocoPolysToMask drops crowd and empty boxes; vitkit also refuses to clip boxes
 * that leave the image, and says so).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { VitkitError } from '../errors.js';
import { parseJsonObject } from '../checkpoint/checkpoint_core.js';
import type { CocoGt, CocoGtAnnotation } from './coco_eval.js';
import type { DetTarget } from './criterion.js';

export interface CocoImage {
  id: number;
  file: string;
  width: number;
  height: number;
}

export interface CocoFolder {
  annotationFile: string;
  images: CocoImage[];
  gt: CocoGt;
  categories: { id: number; name: string }[];
}

const MAX_JSON = 2 ** 29;

function isNum(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** Read and check a COCO folder (see the module comment). */
export function readCocoFolder(dir: string): CocoFolder {
  const annDir = path.join(dir, 'annotations');
  if (!existsSync(annDir) || !statSync(annDir).isDirectory()) throw new VitkitError(`Expected a COCO folder with ${annDir}/<name>.json but ${annDir} is not a directory`);
  const files = readdirSync(annDir).filter((f) => f.endsWith('.json')).sort();
  if (files.length !== 1) throw new VitkitError(`Expected exactly one .json file in ${annDir} but found ${files.length}${files.length ? ` (${files.join(', ')})` : ''}`);
  const file = path.join(annDir, files[0]!);
  const text = readFileSync(file, 'utf8');
  if (text.length > MAX_JSON) throw new VitkitError(`${file} is larger than ${MAX_JSON} characters`);
  const o = parseJsonObject(text, file);
  for (const k of ['images', 'annotations', 'categories']) if (!Array.isArray(o[k])) throw new VitkitError(`${file}: expected "${k}" to be a list but received ${JSON.stringify(o[k])?.slice(0, 40)}`);
  const images: CocoImage[] = (o['images'] as Record<string, unknown>[]).map((im, i) => {
    if (!isNum(im['id']) || typeof im['file_name'] !== 'string' || !isNum(im['width']) || !isNum(im['height']) || !(im['width'] > 0) || !(im['height'] > 0)) {
      throw new VitkitError(`${file}: images[${i}] needs a numeric "id", a "file_name" and positive "width" / "height" but received ${JSON.stringify(im).slice(0, 120)}`);
    }
    return { id: im['id'], file: path.join(dir, 'images', im['file_name']), width: im['width'], height: im['height'] };
  });
  const ids = new Set<number>();
  for (const im of images) {
    if (ids.has(im.id)) throw new VitkitError(`${file}: image id ${im.id} appears twice`);
    ids.add(im.id);
  }
  const categories = (o['categories'] as Record<string, unknown>[]).map((c, i) => {
    if (!isNum(c['id']) || !Number.isInteger(c['id']) || c['id'] < 0) throw new VitkitError(`${file}: categories[${i}] needs a non-negative integer "id" (its class index) but received ${JSON.stringify(c['id'])}`);
    return { id: c['id'], name: typeof c['name'] === 'string' ? c['name'] : `class_${c['id']}` };
  });
  const annotations: CocoGtAnnotation[] = (o['annotations'] as Record<string, unknown>[]).map((a, i) => {
    const b = a['bbox'];
    if (!isNum(a['id']) || !isNum(a['image_id']) || !isNum(a['category_id']) || !Array.isArray(b) || b.length !== 4 || !b.every(isNum)) {
      throw new VitkitError(`${file}: annotations[${i}] needs numeric "id", "image_id", "category_id" and "bbox" [x, y, w, h] but received ${JSON.stringify(a).slice(0, 120)}`);
    }
    if (!ids.has(a['image_id'])) throw new VitkitError(`${file}: annotations[${i}] (id ${a['id']}) refers to image_id ${a['image_id']}, which is not in "images"`);
    const bbox = b as [number, number, number, number];
    return { id: a['id'], image_id: a['image_id'], category_id: a['category_id'], bbox, area: isNum(a['area']) ? a['area'] : bbox[2] * bbox[3], iscrowd: a['iscrowd'] ? 1 : 0 };
  });
  return { annotationFile: file, images, categories, gt: { images: images.map((im) => ({ id: im.id })), annotations, categories } };
}

/** Training targets per image (normalised cx, cy, w, h) and how many annotations were skipped, and why. */
export function cocoTargets(c: CocoFolder, numClasses: number): { targets: Map<number, DetTarget>; skipped: { crowd: number; empty: number; outside: number } } {
  const byId = new Map(c.images.map((im) => [im.id, im]));
  const targets = new Map<number, { labels: number[]; boxes: number[] }>(c.images.map((im) => [im.id, { labels: [], boxes: [] }]));
  const skipped = { crowd: 0, empty: 0, outside: 0 };
  const maxCat = Math.max(-1, ...c.categories.map((k) => k.id));
  if (maxCat >= numClasses) {
    throw new VitkitError(`${c.annotationFile}: category id ${maxCat} does not fit the model's ${numClasses} classes (ids are class indices 0..${numClasses - 1}); pass --num-classes ${maxCat + 1} to re-initialise the class head's last layer`);
  }
  for (const a of c.gt.annotations) {
    if (a.category_id >= numClasses || a.category_id < 0 || !Number.isInteger(a.category_id)) {
      throw new VitkitError(`${c.annotationFile}: annotation ${a.id} has category_id ${a.category_id}, outside the model's classes 0..${numClasses - 1}; pass --num-classes to re-initialise the class head`);
    }
    if (a.iscrowd) { skipped.crowd++; continue; }
    const im = byId.get(a.image_id)!;
    const [x, y, w, h] = a.bbox;
    if (!(w > 0 && h > 0)) { skipped.empty++; continue; }
    if (x < 0 || y < 0 || x + w > im.width + 1e-6 || y + h > im.height + 1e-6) { skipped.outside++; continue; }
    const t = targets.get(a.image_id)!;
    t.labels.push(a.category_id);
    t.boxes.push((x + w / 2) / im.width, (y + h / 2) / im.height, w / im.width, h / im.height);
  }
  return { targets: new Map([...targets].map(([k, v]) => [k, { labels: v.labels, boxes: Float32Array.from(v.boxes) }])), skipped };
}
