/**
 * Few-shot classification of query images against a support folder `<root>/<class>/*.png|jpg...`
 * (torchvision ImageFolder layout): the nearest class prototype by cosine similarity of the
 * pre-logits embeddings.
 */
import type { DeviceName } from '../models/runner.js';
import type { LoadedModel } from '../checkpoint/checkpoint.js';
import { VitkitError } from '../errors.js';
import { loadImageFolder } from '../data/folder.js';
import { embedFiles } from './embed.js';
import { classPrototypes, prototypeScores } from './prototypes.js';

export interface FewshotResult {
  image: string;
  /** the nearest prototype's class */
  prediction: string;
  /** cosine similarity with every class prototype, highest first */
  scores: { class: string; score: number }[];
}

export interface SupportSet {
  classes: string[];
  /** (K, D) L2-normalized prototypes */
  prototypes: Float32Array;
  dim: number;
  /** support images per class */
  counts: number[];
}

/** Embed the support folder and build one prototype per class folder. */
export async function buildSupport(loaded: LoadedModel, root: string, batchSize = 8, device: DeviceName = 'cpu'): Promise<SupportSet> {
  const { ds, classes } = loadImageFolder(root);
  if (classes.length < 2) {
    throw new VitkitError(`Expected at least 2 class folders in the support set ${root} (${root}/<class>/*.png|jpg...) but received ${classes.length}: ${classes.join(', ')}`);
  }
  const { data, dim } = await embedFiles(loaded, ds.files, { batchSize, device });
  const counts = classes.map((_, k) => [...ds.labels].filter((y) => y === k).length);
  return { classes, prototypes: classPrototypes(data, ds.labels, classes.length, dim), dim, counts };
}

/** Classify query images by their nearest class prototype. */
export async function classifyQueries(loaded: LoadedModel, support: SupportSet, queries: string[], batchSize = 8, device: DeviceName = 'cpu'): Promise<FewshotResult[]> {
  const { data } = await embedFiles(loaded, queries, { batchSize, device });
  const K = support.classes.length;
  const scores = prototypeScores(data, support.prototypes, K, support.dim);
  return queries.map((image, i) => {
    const s = support.classes.map((c, k) => ({ class: c, score: scores[i * K + k]! }));
    s.sort((a, b) => b.score - a.score);
    return { image, prediction: s[0]!.class, scores: s };
  });
}
