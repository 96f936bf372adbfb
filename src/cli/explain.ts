import { Command } from 'commander';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError } from 'commander';
import { UsageError, VitkitError, expected } from '../errors.js';
import { cleanStaleTemps } from '../io/files.js';
import { IMAGE_EXTENSIONS } from '../io/image.js';
import { collectImages } from '../embed/embed.js';
import { HEAD_FUSIONS, type HeadFusion } from '../explain/rollout.js';
import { COLORMAPS, type ColormapName } from '../explain/colormap.js';
import { renderOverlay, renderGrid, writePng } from '../explain/overlay.js';
import { EXPLAIN_METHODS, NO_CLASS_TOKEN_NOTE, explainOne, hottest, toRows, type ExplainMethod } from '../explain/explain.js';
import { loadForInference, parseChoice, parseFloatOpt } from './common.js';

interface ExplainCliOptions {
  model: string;
  out?: string;
  json?: boolean;
  method: ExplainMethod;
  headFusion: HeadFusion;
  discardRatio: number;
  class?: string;
  colormap: ColormapName;
  alpha: number;
  overwrite?: boolean;
  randomWeights?: boolean;
}

const choice = parseChoice;

function parseDiscard(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0 || n >= 1) throw new InvalidArgumentError(expected('a number in [0, 1)', '--discard-ratio', v).message);
  return n;
}

/**
 * Output file names per image: <stem>.rollout.png and <stem>.heads.png, distinct within one run.
 * Every image first claims its own stem; a repeated stem (d1/a.png, d2/a.png) takes the first
 * <stem>-<k> that no image claims, so `d1/a.png d2/a.png a-1.png` gives a, a-2 and a-1.
 * Stems are compared case-insensitively (case-insensitive file systems would merge them).
 */
export function outputNames(images: string[], out: string): { rollout: string; heads: string }[] {
  const stems = images.map((img) => path.basename(img, path.extname(img)) || 'image');
  const key = (s: string) => s.toLowerCase();
  const claimed = new Set<string>();
  const first = stems.map((s) => {
    if (claimed.has(key(s))) return false;
    claimed.add(key(s));
    return true;
  });
  return stems.map((stem, i) => {
    let name = stem;
    if (!first[i]) {
      let k = 1;
      while (claimed.has(key(`${stem}-${k}`))) k++;
      name = `${stem}-${k}`;
      claimed.add(key(name));
    }
    return { rollout: path.join(out, `${name}.rollout.png`), heads: path.join(out, `${name}.heads.png`) };
  });
}

export function explainCommand(): Command {
  return new Command('explain')
    .description('attention maps: rollout over all blocks and the last block\'s heads, as overlays on each image (PNG) and/or as patch-grid maps (--json)')
    .requiredOption('-m, --model <dir|preset>', 'checkpoint directory or preset name')
    .option('-o, --out <dir>', 'folder for <image>.rollout.png and <image>.heads.png (created if missing)')
    .option('--json', 'print the maps on the patch grid as JSON')
    .option('--method <name>', `${EXPLAIN_METHODS.join(' | ')}`, choice('--method', EXPLAIN_METHODS), 'rollout' as ExplainMethod)
    .option('--head-fusion <mode>', `how rollout fuses the heads of a block: ${HEAD_FUSIONS.join(' | ')}`, choice('--head-fusion', HEAD_FUSIONS), 'mean' as HeadFusion)
    .option('--discard-ratio <r>', 'fraction in [0, 1) of the lowest attentions of each block dropped (never the class token\'s own)', parseDiscard, 0)
    .option('--class <index|label>', 'grad-rollout: the class to explain (default: the predicted class)')
    .option('--colormap <name>', COLORMAPS.join(' | '), choice('--colormap', COLORMAPS), 'viridis' as ColormapName)
    .option('--alpha <a>', 'heat-map opacity over the image, in [0, 1]', parseFloatOpt('--alpha', 0, 1), 0.5)
    .option('--overwrite', 'replace existing PNGs in --out')
    .option('--random-weights', 'allow a preset name without weights (random initialization)')
    .argument('<images...>', `image files or folders (${IMAGE_EXTENSIONS.join(', ')})`)
    .action(async (inputs: string[], o: ExplainCliOptions) => {
      if (!o.out && !o.json) throw new UsageError('Expected --out <dir> for the PNGs and/or --json for the maps but received neither');
      if (o.class !== undefined && o.method !== 'grad-rollout') {
        throw new UsageError('--class selects the class of gradient-weighted rollout; pass --method grad-rollout with it');
      }
      const images = collectImages(inputs);
      const names = o.out ? outputNames(images, o.out) : [];
      if (o.out) {
        if (existsSync(o.out) && !statSync(o.out).isDirectory()) throw new VitkitError(`Expected a folder for --out but ${o.out} is a file`);
        if (!o.overwrite) {
          for (const n of names) for (const f of [n.rollout, n.heads]) {
            if (existsSync(f)) throw new VitkitError(`Output ${f} already exists; pass --overwrite to replace it`);
          }
        }
        mkdirSync(o.out, { recursive: true });
        cleanStaleTemps(o.out);
      }
      const loaded = loadForInference(o.model, { randomWeights: o.randomWeights ?? false, command: 'explain' });
      const results: Record<string, unknown>[] = [];
      let noted = false;
      for (let i = 0; i < images.length; i++) {
        const e = await explainOne(loaded, images[i]!, {
          method: o.method, headFusion: o.headFusion, discardRatio: o.discardRatio,
          ...(o.class !== undefined ? { classTarget: o.class } : {}),
        });
        const [GH, GW] = e.grid;
        const files: Record<string, string> = {};
        if (o.out) {
          const title = e.method === 'grad-rollout' ? 'grad' : 'rollout';
          const ov = renderOverlay(e.original, e.rollout, GH, GW, e.box, { colormap: o.colormap, alpha: o.alpha, title });
          await writePng(names[i]!.rollout, ov.image, { overwrite: o.overwrite ?? false });
          const grid = await renderGrid(e.original, e.heads, GH, GW, e.box, { colormap: o.colormap, alpha: o.alpha, title: 'attn' });
          await writePng(names[i]!.heads, grid.image, { overwrite: o.overwrite ?? false });
          files['rollout'] = names[i]!.rollout;
          files['heads'] = names[i]!.heads;
        }
        const hot = hottest(e.rollout, GW);
        if (o.json) {
          const r: Record<string, unknown> = {
            image: e.image, method: e.method, grid: e.grid, token: e.token,
            ...(e.token === 'mean' ? { note: NO_CLASS_TOKEN_NOTE } : {}),
            head_fusion: e.method === 'rollout' ? o.headFusion : null, discard_ratio: o.discardRatio,
            ...(e.predicted.index >= 0 ? { predicted: e.predicted } : {}),
            ...(e.target ? { target: e.target } : {}),
            hottest: hot,
            rollout: toRows(e.rollout, GH, GW),
            heads: e.heads.map((h) => toRows(h, GH, GW)),
            ...(o.out ? { files } : {}),
          };
          results.push(r);
        } else {
          if (e.token === 'mean' && !noted) { console.log(`note: ${NO_CLASS_TOKEN_NOTE}`); noted = true; }
          const what = e.method === 'grad-rollout' ? `grad-rollout for class ${e.target!.index} (${e.target!.label})` : `rollout (${o.headFusion} over heads, discard ${o.discardRatio})`;
          console.log(`${e.image}: ${what}, hottest patch row ${hot[0]} col ${hot[1]} of ${GH}x${GW}` +
            (e.predicted.index >= 0 ? `; predicted ${e.predicted.label} (${e.predicted.index}) ${(e.predicted.prob * 100).toFixed(1)}%` : ''));
          if (o.out) console.log(`  wrote ${files['rollout']} and ${files['heads']} (last block, ${e.heads.length} heads)`);
        }
      }
      if (o.json) console.log(JSON.stringify(results));
    });
}
