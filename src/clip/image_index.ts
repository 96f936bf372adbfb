/**
 * An image index for text-to-image and image-to-image search with a CLIP checkpoint.
 *
 * File: safetensors with `embeds` (N, E) float32, unit rows (normalised image_embeds), and
 * metadata `format` = "vitkit-clip-index", `model` (the checkpoint directory, absolute), `files`
 * (JSON: [{ path (absolute), size, mtimeMs }], row order). Re-indexing a folder into the same file
 * embeds only files that are new or whose size / mtime changed, and drops files that are gone.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { VitkitError, shapeStr } from '../errors.js';
import { parseJsonText } from '../io/json.js';
import { Tensor } from '../tensor.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import type { LoadedClip } from './load.js';
import { normalizeRows } from '../models/clip/model.js';
import { encodeImage, encodeText } from './zeroshot.js';
import { parseFrameRef } from '../io/medical.js';

export const INDEX_FORMAT = 'vitkit-clip-index';

export interface IndexedFile {
  path: string;
  size: number;
  mtimeMs: number;
}

export interface SearchHit {
  path: string;
  index: number;
  /** cosine similarity */
  score: number;
}

export class ClipIndex {
  /** the checkpoint directory the embeddings come from */
  readonly model: string;
  readonly files: IndexedFile[];
  /** (N, E) unit rows */
  readonly embeds: Float32Array;
  readonly dim: number;

  constructor(model: string, files: IndexedFile[], embeds: Float32Array, dim: number) {
    if (embeds.length !== files.length * dim) throw new VitkitError(`Index has ${files.length} files but ${embeds.length / dim} embeddings`);
    this.model = model;
    this.files = files;
    this.embeds = embeds;
    this.dim = dim;
  }

  get size(): number {
    return this.files.length;
  }

  /** rank the indexed images by cosine similarity to a query embedding (E) (any norm) */
  searchEmbedding(query: Float32Array, topK = 10): SearchHit[] {
    if (query.length !== this.dim) throw new VitkitError(`Expected a query embedding of width ${this.dim} (the index's) but received ${query.length}`);
    const q = normalizeRows(new Tensor([1, this.dim], Float32Array.from(query))).data;
    const hits: SearchHit[] = this.files.map((f, i) => {
      let s = 0;
      for (let e = 0; e < this.dim; e++) s += q[e]! * this.embeds[i * this.dim + e]!;
      return { path: f.path, index: i, score: s };
    });
    hits.sort((a, b) => b.score - a.score || a.index - b.index);
    return hits.slice(0, Math.max(1, topK));
  }

  /** text-to-image search */
  search(clip: Pick<LoadedClip, 'model' | 'tokenizer'>, text: string, topK = 10): SearchHit[] {
    return this.searchEmbedding(encodeText(clip, [text]).data, topK);
  }

  /** image-to-image search */
  async searchImage(clip: Pick<LoadedClip, 'model' | 'preprocess'>, image: string | Uint8Array, topK = 10): Promise<SearchHit[]> {
    return this.searchEmbedding((await encodeImage(clip, [image])).data, topK);
  }

  save(file: string, opts: { overwrite?: boolean } = {}): void {
    writeSafetensors(file, { embeds: { shape: [this.files.length, this.dim], data: this.embeds } },
      { format: INDEX_FORMAT, model: this.model, files: JSON.stringify(this.files) }, { overwrite: opts.overwrite ?? false });
  }
}

export function readClipIndex(file: string): ClipIndex {
  if (!existsSync(file)) throw new VitkitError(`Index ${file} does not exist; create it with vitkit index --model <clip> <folder> --out ${file}`);
  const st = readSafetensors(file);
  if (st.metadata['format'] !== INDEX_FORMAT) throw new VitkitError(`${file} is not a vitkit CLIP index (metadata format ${JSON.stringify(st.metadata['format'])})`);
  let files: IndexedFile[];
  try { files = parseJsonText(st.metadata['files'] ?? '', `the file list of ${file}`) as IndexedFile[]; } catch (e) { throw new VitkitError(`${file} has no readable file list (${(e as Error).message})`); }
  if (!Array.isArray(files)) throw new VitkitError(`${file}: expected a list of files in its metadata but received ${typeof files}`);
  files.forEach((f, i) => {
    const ok = typeof f === 'object' && f !== null && typeof f.path === 'string' && Number.isFinite(f.size) && Number.isFinite(f.mtimeMs);
    if (!ok) throw new VitkitError(`${file}: expected {"path", "size", "mtimeMs"} for file ${i} of the index but received ${JSON.stringify(f)?.slice(0, 80)}`);
  });
  const e = st.f32('embeds');
  if (e.shape.length !== 2 || e.shape[0] !== files.length) throw new VitkitError(`${file}: embeds ${shapeStr(e.shape)} does not match its ${files.length} files`);
  const bad = e.data.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new VitkitError(`${file}: the embedding of ${files[Math.floor(bad / e.shape[1]!)]!.path} has a non-finite value (${e.data[bad]}); re-create the index with vitkit index --overwrite`);
  return new ClipIndex(st.metadata['model'] ?? '', files, e.data, e.shape[1]!);
}

/**
 * Embed `images` into an index; rows of `previous` whose file is unchanged (same path, size and
 * mtime, same model) are reused. Returns the index and how many files were embedded.
 */
export async function buildClipIndex(clip: LoadedClip, modelDir: string, images: string[], previous?: ClipIndex, batchSize = 32, onProgress?: (done: number, total: number) => void): Promise<{ index: ClipIndex; embedded: number; reused: number }> {
  const E = clip.model.config.embed_dim;
  const abs = images.map((p) => path.resolve(p));
  const files: IndexedFile[] = abs.map((p) => { const s = statSync(parseFrameRef(p).file); return { path: p, size: s.size, mtimeMs: s.mtimeMs }; }); // a frame (file#frame=k): its file's size and mtime
  const embeds = new Float32Array(files.length * E); // (N, E)
  const prev = new Map<string, number>();
  if (previous && previous.model === path.resolve(modelDir) && previous.dim === E) previous.files.forEach((f, i) => prev.set(f.path, i));
  const todo: number[] = [];
  files.forEach((f, i) => {
    const j = prev.get(f.path);
    const old = j !== undefined ? previous!.files[j]! : undefined;
    if (old && old.size === f.size && old.mtimeMs === f.mtimeMs) embeds.set(previous!.embeds.subarray(j! * E, (j! + 1) * E), i * E);
    else todo.push(i);
  });
  onProgress?.(0, todo.length); // the images to embed (unchanged ones are copied)
  for (let s = 0; s < todo.length; s += batchSize) {
    const part = todo.slice(s, s + batchSize);
    const e = normalizeRows(await encodeImage(clip, part.map((i) => abs[i]!)));
    part.forEach((i, k) => embeds.set(e.data.subarray(k * E, (k + 1) * E), i * E));
    onProgress?.(s + part.length, todo.length);
  }
  return { index: new ClipIndex(path.resolve(modelDir), files, embeds, E), embedded: todo.length, reused: files.length - todo.length };
}
