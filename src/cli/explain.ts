import { Command } from 'commander';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { VitkitError, expected } from '../errors.js';
import { loadModel } from '../io/checkpoint.js';
import { HEAD_FUSIONS, type HeadFusion } from '../explain/rollout.js';
import { COLORMAPS, type ColormapName } from '../explain/colormap.js';
import { renderOverlay, renderGrid, writePng } from '../explain/overlay.js';
import { EXPLAIN_METHODS, NO_CLASS_TOKEN_NOTE, explainOne, hottest, toRows, type ExplainMethod } from '../explain/explain.js';
import { parseFloatOpt } from './common.js';

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
}

function choice<T extends string>(name: string, values: readonly T[]) {
  return (v: string): T => {
    if (!(values as readonly string[]).includes(v)) throw expected(values.join(', '), name, v);
    return v as T;
  };
}

function parseDiscard(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0 || n >= 1) throw expected('a number in [0, 1)', '--discard-ratio', v);
  return n;
}

/** Output file names per image: <stem>.rollout.png and <stem>.heads.png, made unique within one run. */
function outputNames(images: string[], out: string): { rollout: string; heads: string }[] {
  const used = new Map<string, number>();
  return images.map((img) => {
    let stem = path.basename(img, path.extname(img)) || 'image';
    const n = used.get(stem) ?? 0;
    used.set(stem, n + 1);
    if (n > 0) stem = `${stem}-${n}`;
    return { rollout: path.join(out, `${stem}.rollout.png`), heads: path.join(out, `${stem}.heads.png`) };
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
    .argument('<images...>', 'JPEG, PNG, WebP or GIF files')
    .action(async (images: string[], o: ExplainCliOptions) => {
      if (!o.out && !o.json) throw new VitkitError('Expected --out <dir> for the PNGs and/or --json for the maps but received neither');
      if (o.class !== undefined && o.method !== 'grad-rollout') {
        throw new VitkitError('--class selects the class of gradient-weighted rollout; pass --method grad-rollout with it');
      }
      const names = o.out ? outputNames(images, o.out) : [];
      if (o.out) {
        if (existsSync(o.out) && !statSync(o.out).isDirectory()) throw new VitkitError(`Expected a folder for --out but ${o.out} is a file`);
        if (!o.overwrite) {
          for (const n of names) for (const f of [n.rollout, n.heads]) {
            if (existsSync(f)) throw new VitkitError(`Output ${f} already exists; pass --overwrite to replace it`);
          }
        }
        mkdirSync(o.out, { recursive: true });
      }
      const loaded = loadModel(o.model);
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
          await writePng(names[i]!.rollout, ov.image);
          const grid = await renderGrid(e.original, e.heads, GH, GW, e.box, { colormap: o.colormap, alpha: o.alpha, title: 'attn' });
          await writePng(names[i]!.heads, grid.image);
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
