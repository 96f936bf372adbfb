/**
 * The Hugging Face cache, laid out exactly as huggingface_hub lays it out so that Python and vitkit
 * share downloads:
 *
 *   <cache>/models--{org}--{name}/
 *     blobs/{etag}                      file contents, named by the normalised etag (sha256 for LFS files)
 *     snapshots/{commit}/{file}         relative symlink to ../../blobs/{etag}
 *     refs/{revision}                   the commit hash a branch or tag pointed at when last seen
 *     .no_exist/{commit}/{file}         empty marker: the file does not exist at that commit
 *
 * <cache> is HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub (XDG_CACHE_HOME honoured as
 * huggingface_hub does).
 */
import { existsSync, lstatSync, readFileSync, statSync, symlinkSync, unlinkSync, copyFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { cleanStaleTemps, makeDirs, syncFile, writeFileAtomic, writeThroughTemp } from '../io/files.js';

/** environment variables as process.env holds them (declared here so the declarations need no Node types) */
export type HubEnv = Readonly<Record<string, string | undefined>>;

export const COMMIT_RE = /^[0-9a-f]{40}$/;

/** An environment variable as huggingface_hub reads a boolean: 1/ON/YES/TRUE, any case. */
export function envTrue(name: string, env: HubEnv = process.env): boolean {
  const v = env[name];
  return v !== undefined && ['1', 'ON', 'YES', 'TRUE'].includes(v.trim().toUpperCase());
}

export function hfHome(env: HubEnv = process.env): string {
  if (env['HF_HOME']) return expandHome(env['HF_HOME']);
  const xdg = env['XDG_CACHE_HOME'] ? expandHome(env['XDG_CACHE_HOME']) : path.join(homedir(), '.cache');
  return path.join(xdg, 'huggingface');
}

/** HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub (HUGGINGFACE_HUB_CACHE is the old name). */
export function hubCacheDir(env: HubEnv = process.env): string {
  const v = env['HF_HUB_CACHE'] ?? env['HUGGINGFACE_HUB_CACHE'];
  return v ? expandHome(v) : path.join(hfHome(env), 'hub');
}

/** HF_ENDPOINT without a trailing slash; https://huggingface.co by default. */
export function hubEndpoint(env: HubEnv = process.env): string {
  return (env['HF_ENDPOINT'] || 'https://huggingface.co').replace(/\/+$/, '');
}

/** HF_TOKEN, else the token file huggingface_hub's `hf auth login` writes (HF_TOKEN_PATH or HF_HOME/token). */
export function hubToken(env: HubEnv = process.env): string | undefined {
  const t = env['HF_TOKEN'] ?? env['HUGGING_FACE_HUB_TOKEN'];
  if (t !== undefined) return t.trim() || undefined;
  const file = env['HF_TOKEN_PATH'] ? expandHome(env['HF_TOKEN_PATH']) : path.join(hfHome(env), 'token');
  try {
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? path.join(homedir(), p.slice(1)) : p;
}

/** models--{org}--{name} */
export function repoFolderName(repoId: string): string {
  return ['models', ...repoId.split('/')].join('--');
}

/** One repository's folder in the cache and the paths inside it. */
export class RepoCache {
  readonly root: string;
  constructor(readonly cacheDir: string, readonly repoId: string) {
    this.root = path.join(cacheDir, repoFolderName(repoId));
  }

  blobPath(etag: string): string {
    return path.join(this.root, 'blobs', etag);
  }

  pointerPath(commit: string, file: string): string {
    return path.join(this.root, 'snapshots', commit, ...file.split('/'));
  }

  snapshotDir(commit: string): string {
    return path.join(this.root, 'snapshots', commit);
  }

  noExistPath(commit: string, file: string): string {
    return path.join(this.root, '.no_exist', commit, ...file.split('/'));
  }

  lockPath(etag: string): string {
    // huggingface_hub's own lock is .locks/<folder>/<etag>.lock (an fcntl lock on a file it leaves behind);
    // ours is an exclusive-create file beside it, so a Python lock file left on disk never blocks vitkit.
    return path.join(this.cacheDir, '.locks', repoFolderName(this.repoId), `${etag}.vitkit-lock`);
  }

  /** The commit a revision resolves to from the cache alone: a commit hash is itself, a branch/tag is refs/<rev>. */
  cachedCommit(revision: string): string | undefined {
    if (COMMIT_RE.test(revision)) return revision;
    try {
      const c = readFileSync(path.join(this.root, 'refs', ...revision.split('/')), 'utf8').trim();
      return COMMIT_RE.test(c) ? c : undefined;
    } catch {
      return undefined;
    }
  }

  /** refs/<revision> = commit, written only when it changed (atomically). Commit hashes get no ref. */
  writeRef(revision: string, commit: string): void {
    if (revision === commit) return;
    const file = path.join(this.root, 'refs', ...revision.split('/'));
    try {
      if (readFileSync(file, 'utf8') === commit) return;
    } catch { /* no ref yet */ }
    makeDirs(path.dirname(file), 'Hugging Face cache folder');
    writeFileAtomic(file, commit, { overwrite: true, what: 'Hugging Face cache ref' });
  }

  /** snapshots/<commit>/<file> resolves to an existing blob */
  hasPointer(commit: string, file: string): boolean {
    return existsSync(this.pointerPath(commit, file)); // follows the symlink: a dangling one does not count
  }

  hasNoExist(commit: string, file: string): boolean {
    return existsSync(this.noExistPath(commit, file));
  }

  markNoExist(commit: string, file: string): void {
    const p = this.noExistPath(commit, file);
    makeDirs(path.dirname(p), 'Hugging Face cache folder');
    writeFileAtomic(p, '', { overwrite: true, what: 'Hugging Face cache marker' });
  }

  /** snapshots/<commit>/<file> -> relative symlink to the blob (a copy where symlinks are not allowed). */
  linkPointer(commit: string, file: string, etag: string): string {
    const pointer = this.pointerPath(commit, file);
    const blob = this.blobPath(etag);
    makeDirs(path.dirname(pointer), 'Hugging Face cache folder');
    cleanStaleTemps(path.dirname(pointer)); // what a killed download left here
    writeThroughTemp(pointer, { overwrite: true, what: 'Hugging Face cache pointer' }, (tmp) => {
      try {
        symlinkSync(path.relative(path.dirname(pointer), blob), tmp);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EACCES') throw e;
        copyFileSync(blob, tmp); // Windows without developer mode: huggingface_hub also falls back to real files
        syncFile(tmp);
      }
    });
    return pointer;
  }
}

export function removeIfPresent(p: string): void {
  try {
    lstatSync(p);
  } catch {
    return;
  }
  unlinkSync(p);
}

export function fileSize(p: string): number {
  try {
    return statSync(p).size;
  } catch {
    return -1;
  }
}
