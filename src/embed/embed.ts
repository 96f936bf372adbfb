/**
 * Image embeddings: the pre-logits features (the head's input: the class token, or the pooled
 * patch tokens after fc_norm) of each image, optionally L2-normalized, written as safetensors
 * (`embeddings` (n, D) F32, the file names in the metadata) or JSON lines.
 */
import { runnerFor, type DeviceName } from '../models/runner.js';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { writeFileAtomic } from '../io/files.js';
import path from 'node:path';
import { VitkitError } from '../errors.js';
import { Tensor } from '../tensor.js';
import type { LoadedModel } from '../checkpoint/checkpoint.js';
import type { Model } from '../models/model.js';
import { preprocessBatch } from '../io/preprocess.js';
import { IMAGE_EXTENSIONS } from '../io/image.js';
import { expandFrames } from '../io/medical.js';
import { writeSafetensors } from '../io/safetensors.js';
import { l2normalize } from './prototypes.js';
import { imgHW } from '../models/config.js';

export const EMBED_IMAGE_EXTENSIONS: readonly string[] = IMAGE_EXTENSIONS;

function isImage(name: string): boolean {
  return EMBED_IMAGE_EXTENSIONS.includes(path.extname(name).toLowerCase());
}

/** Image files under a folder, recursively, in sorted order (hidden entries skipped). */
function walk(dir: string, out: string[]): void {
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (e.name.startsWith('.')) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (isImage(e.name)) out.push(p);
  }
}

/** Expand files and folders (recursively, sorted) into images: a multi-frame DICOM file gives one `<file>#frame=<k>` per frame (io/medical.ts expandFrames). */
export function collectImages(inputs: string[]): string[] {
  const out: string[] = [];
  for (const p of inputs) {
    if (!existsSync(p)) throw new VitkitError(`Image file or folder ${p} does not exist`);
    if (statSync(p).isDirectory()) {
      const found: string[] = [];
      walk(p, found);
      if (found.length === 0) throw new VitkitError(`Expected image files (${EMBED_IMAGE_EXTENSIONS.join(', ')}) in folder ${p} but received none`);
      out.push(...found);
    } else {
      out.push(p);
    }
  }
  if (out.length === 0) throw new VitkitError('Expected at least one image file or folder but received none');
  return expandFrames(out);
}

/** Pre-logits features (B, D) of pixel_values (B, C, H, W), optionally L2-normalized. */
export function embedPixels(model: Model, x: Tensor, normalize = false): Float32Array {
  const f = model.forwardFeatures(x);
  const pre = model.forwardHead(f.features, { preLogits: true });
  const [B, D] = pre.shape as [number, number];
  return normalize ? l2normalize(pre.data, B, D) : pre.data;
}

/** Embeddings (n, D) of image files. */
export async function embedFiles(loaded: LoadedModel, files: string[], opts: { normalize?: boolean; batchSize?: number; device?: DeviceName; onProgress?: (done: number, total: number) => void } = {}): Promise<{ data: Float32Array; dim: number }> {
  const { model, preprocess } = loaded;
  const runner = await runnerFor(model, opts.device ?? 'cpu');
  const { in_chans: C, embed_dim: D } = model.config;
  const bs = opts.batchSize ?? 8;
  const out = new Float32Array(files.length * D); // (n, D)
  opts.onProgress?.(0, files.length);
  for (let i = 0; i < files.length; i += bs) {
    const batch = files.slice(i, i + bs);
    const px = await preprocessBatch(batch, preprocess);
    const x = new Tensor([batch.length, C, ...imgHW(model.config)], px);
    const pre = (await runner.embed(x)).data; // (B, D)
    out.set(opts.normalize ? l2normalize(pre, batch.length, D) : pre, i * D);
    opts.onProgress?.(i + batch.length, files.length);
  }
  runner.release();
  return { data: out, dim: D };
}

export type EmbedFormat = 'safetensors' | 'jsonl';

/** The output format from the file name; anything else is an error. */
export function embedFormat(file: string): EmbedFormat {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.safetensors') return 'safetensors';
  if (ext === '.jsonl') return 'jsonl';
  throw new VitkitError(`Expected an --out file ending in .safetensors or .jsonl but received ${JSON.stringify(file)}`);
}

export interface EmbeddingMeta {
  model: string;
  normalized: boolean;
}

/**
 * safetensors: tensor `embeddings` (n, D) F32; metadata `names` (a JSON array of the file names,
 * row order), `model`, `normalized` ("true" / "false"), `dim`.
 * jsonl: one line per image, {"name": file, "embedding": [D numbers]}.
 */
export function writeEmbeddings(file: string, names: string[], data: Float32Array, dim: number, meta: EmbeddingMeta, overwrite = false): void {
  if (data.length !== names.length * dim) throw new VitkitError(`Expected ${names.length} x ${dim} embedding values but received ${data.length}`);
  if (embedFormat(file) === 'safetensors') {
    writeSafetensors(file, { embeddings: { dtype: 'F32', shape: [names.length, dim], data } }, {
      names: JSON.stringify(names), model: meta.model, normalized: String(meta.normalized), dim: String(dim), producer: 'vitkit embed',
    }, { overwrite });
    return;
  }
  const lines = names.map((n, i) => JSON.stringify({ name: n, embedding: Array.from(data.subarray(i * dim, (i + 1) * dim)) }));
  writeFileAtomic(file, lines.join('\n') + '\n', { overwrite, what: 'embeddings file' });
}
