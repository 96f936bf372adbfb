import { Command, Option } from 'commander';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { VitkitError } from '../errors.js';
import { downloadFiles, downloadModel, parseHubSpec, type HubLayout, type HubOptions } from '../hub/resolve.js';
import { hubCacheDir } from '../hub/cache.js';
import { removeInFlight } from '../hub/download.js';
import { copyFileAtomic, makeDirs } from '../io/files.js';
import { signalExitCode, type StopSignalName } from '../train/signals.js';

interface DownloadOpts {
  layout: HubLayout;
  json?: boolean;
  include?: string[];
  exclude?: string[];
  localDir?: string;
  token?: string;
  overwrite?: boolean;
}

/**
 * Copy the downloaded files from the snapshot into `dir` (huggingface-cli's --local-dir): every
 * destination is checked first (inside `dir`, not there unless --overwrite), then each is copied to a
 * temporary name and renamed, so a stopped copy leaves no file under a final name.
 */
function copyToLocalDir(snapshot: string, files: readonly string[], dir: string, overwrite: boolean): void {
  const root = path.resolve(dir);
  const plan = files.map((f) => {
    const dest = path.resolve(root, ...f.split('/'));
    if (!dest.startsWith(root + path.sep)) throw new VitkitError(`File ${JSON.stringify(f)} would be written outside --local-dir ${dir}`);
    if (existsSync(dest) && !overwrite) throw new VitkitError(`Output ${dest} already exists; pass --overwrite to replace it`);
    return { src: path.join(snapshot, ...f.split('/')), dest };
  });
  for (const { src, dest } of plan) {
    makeDirs(path.dirname(dest), '--local-dir folder');
    copyFileAtomic(src, dest, { overwrite, what: '--local-dir file' });
  }
}

/** Pre-fetch a Hub model into the shared Hugging Face cache; prints the snapshot directory. */
export function downloadCommand(): Command {
  return new Command('download')
    .description('download a Hugging Face Hub model into the shared cache (HF_HUB_CACHE / HF_HOME/hub / ~/.cache/huggingface/hub) and print its directory; '
      + 'with --include/--exclude any files, as huggingface-cli download does')
    .argument('<repo>', '<org>/<name>[@revision] or hf-hub:<org>/<name>[@revision]')
    .addOption(new Option('--layout <layout>', 'which checkpoint files to fetch (without --include/--exclude)').choices(['auto', 'timm', 'hf', 'open_clip']).default('auto'))
    .option('--include <patterns...>', 'glob patterns of files to fetch (huggingface_hub\'s allow_patterns; * matches / too), e.g. "*.json" "*.safetensors"')
    .option('--exclude <patterns...>', 'glob patterns of files to skip (ignore_patterns)')
    .option('--local-dir <dir>', 'also copy the files into this folder (atomically; existing files need --overwrite) and print it')
    .option('--token <token>', 'Hub token (default HF_TOKEN or the token file of `hf auth login`)')
    .option('--overwrite', 'replace files already in --local-dir')
    .option('--json', 'print {"repo", "revision", "commit", "dir", "layout", "files"}')
    .action(async (repo: string, o: DownloadOpts) => {
      const spec = parseHubSpec(repo.replace(/^hf-hub:/, ''));
      if (!spec) throw new VitkitError(`Expected <org>/<name>[@revision] for <repo> but received ${JSON.stringify(repo)}`);
      // SIGINT/SIGTERM (docker stop, CI runners): no lock or temporary copy is left; a blob's .incomplete
      // never has a final name and the next run resumes it
      const stop = (sig: StopSignalName): void => {
        removeInFlight();
        console.error(`error: download of ${spec.repoId} stopped by ${sig}; run it again to resume`);
        process.exit(signalExitCode(sig));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        const hub: HubOptions = { revision: spec.revision, ...(o.token !== undefined ? { token: o.token } : {}) };
        const m = o.include || o.exclude
          ? { ...(await downloadFiles(spec.repoId, { ...hub, ...(o.include ? { include: o.include } : {}), ...(o.exclude ? { exclude: o.exclude } : {}) })), layout: undefined }
          : await downloadModel(spec.repoId, { ...hub, layout: o.layout });
        if (o.localDir !== undefined) copyToLocalDir(m.dir, m.files, o.localDir, o.overwrite === true);
        const shown = o.localDir !== undefined ? path.resolve(o.localDir) : m.dir;
        if (o.json) {
          console.log(JSON.stringify({ repo: m.repoId, revision: m.revision, commit: m.commit, dir: shown, ...(m.layout ? { layout: m.layout } : {}), files: m.files, cache: hubCacheDir() }));
          return;
        }
        console.log(shown);
      } finally {
        process.removeListener('SIGINT', stop);
        process.removeListener('SIGTERM', stop);
      }
    });
}
