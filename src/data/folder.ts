/**
 * Image folders: `<root>/<class>/*.{jpg,jpeg,png,webp,gif,tif,tiff,avif}` (torchvision ImageFolder's
 * layout; the same image types predict, explain and embed read: io/image.ts IMAGE_EXTENSIONS).
 * Classes are the sub-folder names in sorted order; files are sorted within each class, and each frame
 * of a multi-frame DICOM file is its own sample (`<file>#frame=<k>`; --frame k keeps frame k only).
 */
import { readdirSync, statSync, existsSync } from 'node:fs';
import path from 'node:path';
import { VitkitError } from '../errors.js';
import { type FileDataset, sharedI32 } from './dataset.js';

import { IMAGE_EXTENSIONS } from '../io/image.js';
import { expandFrames } from '../io/medical.js';

export { IMAGE_EXTENSIONS };

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** Sorted class sub-folders of `root`. */
export function classFolders(root: string): string[] {
  if (!isDir(root)) throw new VitkitError(`Expected an image folder for ${root} but received ${existsSync(root) ? 'a file' : 'a path that does not exist'}`);
  return readdirSync(root).filter((d) => !d.startsWith('.') && isDir(path.join(root, d))).sort();
}

export function isImageFile(name: string): boolean {
  return IMAGE_EXTENSIONS.includes(path.extname(name).toLowerCase());
}

/**
 * Read `<root>/<class>/*` into a dataset. With `classes`, the class names (and their order) are
 * given (val/ uses train/'s classes) and an unknown class folder is an error.
 */
export function loadImageFolder(root: string, classes?: string[]): { ds: FileDataset; classes: string[] } {
  const found = classFolders(root);
  if (found.length === 0) {
    throw new VitkitError(`Expected class folders in ${root} (${root}/<class>/*.jpg|png|...) but received none`);
  }
  const names = classes ?? found;
  if (classes) {
    const unknown = found.filter((c) => !classes.includes(c));
    if (unknown.length) throw new VitkitError(`Class folder ${path.join(root, unknown[0]!)} is not one of the training classes: ${classes.join(', ')}`);
  }
  const files: string[] = [];
  const labels: number[] = [];
  for (const cls of found) {
    const dir = path.join(root, cls);
    const imgs = readdirSync(dir).filter((f) => !f.startsWith('.') && isImageFile(f)).sort();
    if (imgs.length === 0) {
      throw new VitkitError(`Class folder ${dir} has no images: expected files ending in ${IMAGE_EXTENSIONS.join(', ')}`);
    }
    const y = names.indexOf(cls);
    for (const f of expandFrames(imgs.map((f) => path.join(dir, f)))) {
      files.push(f);
      labels.push(y);
    }
  }
  const lab = sharedI32(labels.length);
  lab.set(labels);
  return { ds: { kind: 'files', name: root, n: files.length, labels: lab, files }, classes: names };
}
