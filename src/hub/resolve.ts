/**
 * `--model org/name[@revision]` and `hf-hub:org/name[@revision]`: fetch the files a checkpoint layout
 * needs into the shared Hugging Face cache and hand back the snapshot directory, which loads like any
 * checkpoint directory.
 *
 * Which files: config.json first. A timm config (`architecture`) needs model.safetensors; a transformers
 * config (`model_type` / `architectures`) needs model.safetensors and, when present,
 * preprocessor_config.json (and for CLIP the tokenizer files). Without config.json, open_clip's layout:
 * open_clip_config.json + open_clip_model.safetensors. Every file after the first is fetched at the commit
 * the first one resolved to, so a snapshot is never a mix of two commits, and a second run makes one
 * metadata request (files already in snapshots/<commit>/ need none; nor do optional files recorded in
 * .no_exist/<commit>/). Only safetensors: a repository with only pickle weights is refused.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { readTextFile } from '../io/files.js';
import { parseJsonObject } from '../checkpoint/checkpoint_core.js';
import { VitkitError } from '../errors.js';
import { PRESETS } from '../models/presets.js';
import { COMMIT_RE, RepoCache, type HubEnv, envTrue, hubCacheDir, hubEndpoint, hubToken } from './cache.js';
import { HubHttpError, HubNetworkError, MAX_SMALL_FILE_BYTES, OFFLINE_HINT, downloadBlob, fileMetadata, filterFiles, listRepoFiles, type HttpOptions } from './download.js';

export type HubLayout = 'auto' | 'timm' | 'hf' | 'open_clip';

export interface HubOptions {
  /** branch, tag or commit (default: the spec's @revision, else main) */
  revision?: string;
  /** default HF_HUB_CACHE / HF_HOME/hub / ~/.cache/huggingface/hub */
  cacheDir?: string;
  /** default HF_ENDPOINT or https://huggingface.co */
  endpoint?: string;
  /** default HF_TOKEN or the token file; false sends none */
  token?: string | false;
  /** default HF_HUB_OFFLINE */
  offline?: boolean;
  /** which checkpoint layout to fetch; 'auto' decides from config.json (open_clip when it is absent) */
  layout?: HubLayout;
  progress?: boolean;
  retries?: number;
  /** environment to read the HF_* variables from (default process.env) */
  env?: HubEnv;
  /** where warnings go (default stderr) */
  warn?: (line: string) => void;
}

export interface HubSpec {
  repoId: string;
  revision: string;
}

export interface DownloadedModel {
  repoId: string;
  revision: string;
  commit: string;
  /** snapshots/<commit> in the cache */
  dir: string;
  layout: Exclude<HubLayout, 'auto'>;
  /** the files present for this layout, relative to dir */
  files: string[];
}

const NAME = '[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?';
const REPO_RE = new RegExp(`^${NAME}/${NAME}$`);
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'vocab.json', 'merges.txt', 'special_tokens_map.json'];

function validRepoId(id: string): boolean {
  return REPO_RE.test(id) && !id.includes('--') && !id.includes('..');
}

/**
 * `hf-hub:org/name[@rev]` or `org/name[@rev]` -> repo id and revision; null for anything else (a path, a
 * preset name). A malformed `hf-hub:` spec throws.
 */
export function parseHubSpec(spec: string): HubSpec | null {
  const prefixed = spec.startsWith('hf-hub:');
  const body = prefixed ? spec.slice('hf-hub:'.length) : spec;
  const at = body.indexOf('@');
  const repoId = at < 0 ? body : body.slice(0, at);
  const revision = at < 0 ? 'main' : body.slice(at + 1);
  const ok = validRepoId(repoId) && revision.length > 0 && !/[\s]/.test(revision) && !revision.split('/').includes('..');
  if (!ok) {
    if (prefixed) throw new VitkitError(`Expected hf-hub:<org>/<name>[@revision] for --model but received ${JSON.stringify(spec)}`);
    return null;
  }
  return { repoId, revision };
}

/**
 * What the CLI calls wherever `--model` is read: a local path or a preset name comes back unchanged; a Hub
 * repository (`org/name[@rev]`, `hf-hub:org/name[@rev]`) is fetched into the cache and its snapshot
 * directory comes back.
 */
export async function resolveModelDir(spec: string, opts: HubOptions = {}): Promise<string> {
  if (existsSync(spec) || spec in PRESETS) return spec;
  const hub = parseHubSpec(spec);
  if (!hub) return spec;
  try {
    return (await downloadModel(hub.repoId, { ...opts, revision: opts.revision ?? hub.revision })).dir;
  } catch (e) {
    // `org/name` might have been meant as a local path: say that it is none before the Hub's answer
    const noRepo = e instanceof HubHttpError && (e.status === 401 || e.code === 'RepoNotFound');
    if (!spec.startsWith('hf-hub:') && (noRepo || e instanceof HubNetworkError)) {
      throw new VitkitError(`Model ${spec} is no local directory, so it was looked up on the Hub: ${(e as Error).message}`);
    }
    throw e;
  }
}

/** Fetch (or find in the cache) the files of one checkpoint layout of a Hub repository. */
export async function downloadModel(repoId: string, opts: HubOptions = {}): Promise<DownloadedModel> {
  if (!validRepoId(repoId)) throw new VitkitError(`Expected a Hub repository <org>/<name> but received ${JSON.stringify(repoId)}`);
  const s = new Session(repoId, opts);
  const layout = opts.layout ?? 'auto';
  const files: string[] = [];
  const need = async (file: string): Promise<void> => { await s.file(file, false); files.push(file); };
  const maybe = async (file: string): Promise<boolean> => {
    const p = await s.file(file, true);
    if (p) files.push(file);
    return p !== null;
  };
  const weights = async (file: string, pickle: string): Promise<void> => {
    if (await maybe(file)) return;
    if (await s.probe(`${file}.index.json`)) {
      throw new VitkitError(`${repoId}@${s.revision} has a sharded checkpoint (${file}.index.json); vitkit loads a single ${file}`);
    }
    if (await s.probe(pickle)) {
      throw new VitkitError(`${repoId}@${s.revision} has only ${pickle} (pickle) and no ${file}: vitkit loads safetensors only, `
        + 'since unpickling can run code; convert it to safetensors, or pick a revision that has one (the Hub\'s conversion PRs are refs/pr/<n>)');
    }
    throw s.missing(file);
  };

  let kind: Exclude<HubLayout, 'auto'>;
  if (layout === 'open_clip' || (layout === 'auto' && !(await maybe('config.json')))) {
    if (layout === 'auto' && !(await maybe('open_clip_config.json'))) {
      throw new VitkitError(`${repoId}@${s.revision} has neither config.json nor open_clip_config.json`
        + (s.offline ? ` in the cache ${s.cache.root} (${s.offlineWhy})` : ': not a timm, transformers or open_clip checkpoint'));
    }
    if (layout === 'open_clip') await need('open_clip_config.json');
    kind = 'open_clip';
    await weights('open_clip_model.safetensors', 'open_clip_pytorch_model.bin');
    for (const f of TOKENIZER_FILES) await maybe(f);
  } else {
    if (layout !== 'auto') await need('config.json');
    const cfgFile = s.path('config.json');
    // capped and depth-checked: a cache Python filled is read with the same limits as a download
    const cfg = parseJsonObject(readTextFile(cfgFile, `config.json of ${repoId}@${s.revision}`, MAX_SMALL_FILE_BYTES), cfgFile);
    if (layout !== 'auto') kind = layout;
    else if ('architecture' in cfg) kind = 'timm';
    else if ('model_type' in cfg || 'architectures' in cfg) kind = 'hf';
    else throw new VitkitError(`config.json of ${repoId}@${s.revision} is neither timm's (no "architecture") nor transformers' (no "model_type")`);
    await weights('model.safetensors', 'pytorch_model.bin');
    if (kind === 'hf') {
      await maybe('preprocessor_config.json');
      if (/clip/i.test(String(cfg['model_type'] ?? ''))) for (const f of TOKENIZER_FILES) await maybe(f);
    }
  }
  const commit = s.commit!;
  return { repoId, revision: s.revision, commit, dir: s.cache.snapshotDir(commit), layout: kind, files };
}

export interface FilesOptions extends HubOptions {
  /** glob patterns (huggingface_hub's allow_patterns): only matching files; default every file */
  include?: readonly string[];
  /** glob patterns (ignore_patterns): none of these */
  exclude?: readonly string[];
}

/**
 * `huggingface-cli download <repo> --include ... --exclude ...`: the repository's file list at the
 * revision (every name checked, see listRepoFiles), filtered, each file fetched into the cache at the
 * listing's commit. Offline (or with the Hub unreachable and the revision cached): the cached
 * snapshot's files, filtered.
 */
export async function downloadFiles(repoId: string, opts: FilesOptions = {}): Promise<Omit<DownloadedModel, 'layout'>> {
  if (!validRepoId(repoId)) throw new VitkitError(`Expected a Hub repository <org>/<name> but received ${JSON.stringify(repoId)}`);
  const s = new Session(repoId, opts);
  let listed: string[];
  if (!s.offline) {
    try {
      const l = await listRepoFiles(repoId, s.revision, s.http);
      s.pinCommit(l.commit);
      listed = l.files;
    } catch (e) {
      const cached = s.cache.cachedCommit(s.revision);
      if (!(e instanceof HubNetworkError) || !cached || !existsSync(s.cache.snapshotDir(cached))) throw e;
      (opts.warn ?? ((l: string) => console.error(l)))(`warning: ${e.message.split(';')[0]}; using the cached snapshot ${cached.slice(0, 12)} of ${repoId}`);
      s.goOffline(`${s.http.endpoint} cannot be reached`, cached);
      listed = snapshotFiles(s.cache.snapshotDir(cached));
    }
  } else {
    const cached = s.cache.cachedCommit(s.revision);
    if (!cached || !existsSync(s.cache.snapshotDir(cached))) {
      throw new VitkitError(`${repoId}@${s.revision} is not in the Hugging Face cache ${s.cache.cacheDir}, and ${s.offlineWhy}`);
    }
    s.goOffline(s.offlineWhy, cached);
    listed = snapshotFiles(s.cache.snapshotDir(cached));
  }
  const files = filterFiles(listed, opts.include, opts.exclude);
  if (files.length === 0) {
    throw new VitkitError(`No file of ${repoId}@${s.revision} matches --include ${JSON.stringify(opts.include ?? [])} --exclude ${JSON.stringify(opts.exclude ?? [])} (${listed.length} files listed)`);
  }
  for (const f of files) await s.file(f, false);
  return { repoId, revision: s.revision, commit: s.commit!, dir: s.cache.snapshotDir(s.commit!), files };
}

/** every file under a snapshot folder, relative, '/'-separated (bounded: 100,000 entries) */
function snapshotFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      if (out.length >= 100_000) return;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else out.push(r);
    }
  };
  walk('');
  return out.sort();
}

/** One repository at one revision: the metadata → cache → download steps for each file. */
class Session {
  readonly cache: RepoCache;
  readonly http: HttpOptions;
  readonly revision: string;
  offline: boolean;
  /** why nothing is downloaded: HF_HUB_OFFLINE, or the Hub could not be reached */
  offlineWhy = 'HF_HUB_OFFLINE=1 forbids downloading it';
  /** pinned by the first answer; every later file is fetched at this commit */
  commit: string | undefined;
  private readonly warn: (line: string) => void;

  constructor(readonly repoId: string, opts: HubOptions) {
    const env = opts.env ?? process.env;
    this.cache = new RepoCache(opts.cacheDir ?? hubCacheDir(env), repoId);
    const token = opts.token === false ? undefined : opts.token ?? hubToken(env);
    this.http = {
      endpoint: (opts.endpoint ?? hubEndpoint(env)).replace(/\/+$/, ''), token,
      etagTimeout: Number(env['HF_HUB_ETAG_TIMEOUT'] ?? 10) || 10,
      downloadTimeout: Number(env['HF_HUB_DOWNLOAD_TIMEOUT'] ?? 10) || 10,
      ...(opts.progress !== undefined ? { progress: opts.progress } : envTrue('HF_HUB_DISABLE_PROGRESS_BARS', env) ? { progress: false } : {}),
      ...(opts.retries !== undefined ? { retries: opts.retries } : {}),
    };
    this.revision = opts.revision ?? 'main';
    this.offline = opts.offline ?? envTrue('HF_HUB_OFFLINE', env);
    this.warn = opts.warn ?? ((l) => console.error(l));
  }

  path(file: string): string {
    return this.cache.pointerPath(this.commit!, file);
  }

  missing(file: string): VitkitError {
    return this.offline
      ? new VitkitError(`${file} of ${this.repoId}@${this.revision} is not in the cache ${this.cache.snapshotDir(this.commit!)} and ${this.offlineWhy}`)
      : new VitkitError(`File ${file} not found in ${this.repoId}@${this.revision} (404 from ${this.http.endpoint}); ${OFFLINE_HINT}`);
  }

  /** the local path of `file` at the pinned commit, downloading it if needed; null if optional and absent */
  async file(file: string, optional: boolean): Promise<string | null> {
    if (this.offline) return this.fromCache(file, optional);
    const rev = this.commit ?? this.revision;
    if (COMMIT_RE.test(rev)) {
      if (this.cache.hasPointer(rev, file)) { this.commit = rev; return this.cache.pointerPath(rev, file); }
      if (optional && this.cache.hasNoExist(rev, file)) { this.commit = rev; return null; }
    }
    let answer: Awaited<ReturnType<typeof fileMetadata>>;
    try {
      answer = await fileMetadata(this.repoId, rev, file, this.http);
    } catch (e) {
      // as huggingface_hub does: unreachable Hub, but this revision is cached -> use the cache
      const cached = this.commit ?? this.cache.cachedCommit(this.revision);
      if (e instanceof HubNetworkError && cached && existsSync(this.cache.snapshotDir(cached))) {
        this.warn(`warning: ${e.message.split(';')[0]}; using the cached snapshot ${cached.slice(0, 12)} of ${this.repoId}`);
        this.offline = true;
        this.offlineWhy = `${this.http.endpoint} cannot be reached`;
        this.commit = cached;
        return this.fromCache(file, optional);
      }
      throw e;
    }
    if (!answer.meta) {
      if (answer.missingAt && COMMIT_RE.test(answer.missingAt)) {
        this.cache.markNoExist(answer.missingAt, file);
        this.pin(answer.missingAt);
      }
      if (optional) return null;
      throw this.missing(file);
    }
    const meta = answer.meta;
    this.pin(meta.commit);
    const commit = this.commit!;
    if (this.cache.hasPointer(commit, file)) return this.cache.pointerPath(commit, file);
    if (!existsSync(this.cache.blobPath(meta.etag))) {
      await downloadBlob(this.cache, file, this.revision, meta, this.http);
    }
    return this.cache.linkPointer(commit, file, meta.etag);
  }

  /** does `file` exist at the pinned commit (metadata only, nothing downloaded) */
  async probe(file: string): Promise<boolean> {
    if (this.offline) return this.cache.hasPointer(this.commit!, file);
    const rev = this.commit ?? this.revision;
    return (await fileMetadata(this.repoId, rev, file, this.http)).meta !== null;
  }

  /** the commit a listing named: every file is fetched at it */
  pinCommit(commit: string): void {
    this.pin(commit);
  }

  goOffline(why: string, commit: string): void {
    this.offline = true;
    this.offlineWhy = why;
    this.commit = commit;
  }

  private pin(commit: string): void {
    if (!COMMIT_RE.test(commit)) throw new VitkitError(`The Hub sent an invalid commit ${JSON.stringify(commit)} for ${this.repoId}@${this.revision}`);
    if (this.commit === undefined) {
      this.commit = commit;
      this.cache.writeRef(this.revision, commit);
    }
  }

  private fromCache(file: string, optional: boolean): string | null {
    const commit = this.commit ?? this.cache.cachedCommit(this.revision);
    if (!commit || !existsSync(this.cache.snapshotDir(commit))) {
      throw new VitkitError(`${this.repoId}@${this.revision} is not in the Hugging Face cache ${this.cache.cacheDir}, and ${this.offlineWhy}`);
    }
    this.commit = commit;
    if (this.cache.hasPointer(commit, file)) return this.cache.pointerPath(commit, file);
    if (optional) return null;
    throw this.missing(file);
  }
}
