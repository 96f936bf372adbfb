import { Command, Option } from 'commander';
import { VitkitError } from '../errors.js';
import { downloadModel, parseHubSpec, type HubLayout } from '../hub/resolve.js';
import { hubCacheDir } from '../hub/cache.js';

/** Pre-fetch a Hub model into the shared Hugging Face cache; prints the snapshot directory. */
export function downloadCommand(): Command {
  return new Command('download')
    .description('download a Hugging Face Hub model into the shared cache (HF_HUB_CACHE / HF_HOME/hub / ~/.cache/huggingface/hub) and print its directory')
    .argument('<repo>', '<org>/<name>[@revision] or hf-hub:<org>/<name>[@revision]')
    .addOption(new Option('--layout <layout>', 'which checkpoint files to fetch').choices(['auto', 'timm', 'hf', 'open_clip']).default('auto'))
    .option('--json', 'print {"repo", "revision", "commit", "dir", "layout", "files"}')
    .action(async (repo: string, o: { layout: HubLayout; json?: boolean }) => {
      const spec = parseHubSpec(repo.replace(/^hf-hub:/, ''));
      if (!spec) throw new VitkitError(`Expected <org>/<name>[@revision] for <repo> but received ${JSON.stringify(repo)}`);
      const m = await downloadModel(spec.repoId, { revision: spec.revision, layout: o.layout });
      if (o.json) {
        console.log(JSON.stringify({ repo: m.repoId, revision: m.revision, commit: m.commit, dir: m.dir, layout: m.layout, files: m.files, cache: hubCacheDir() }));
        return;
      }
      console.log(m.dir);
    });
}
