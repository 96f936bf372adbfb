/** Class names: the checkpoint's own, or the ImageNet-1k list bundled in data/ for 1000-class models. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../backend/native.js';
import { labelsFrom } from './labels_core.js';

let imagenet: string[] | undefined;

/** The 1,000 ImageNet-1k class names in index order (first name of each synset). */
export function imagenetLabels(): string[] {
  if (!imagenet) {
    const text = readFileSync(path.join(packageRoot, 'data', 'imagenet1k_labels.tsv'), 'utf8');
    imagenet = text.split('\n').filter((l) => l.trim()).map((l) => (l.split('\t')[1] ?? '').split(',')[0]!.trim());
  }
  return imagenet;
}

/** Labels for a model with K classes, from explicit names or ImageNet-1k for K = 1000; else class_<i>. */
export function labelsFor(K: number, names?: readonly string[] | null): string[] {
  return labelsFrom(K, names, imagenetLabels);
}
