import { imageOptions } from './image_options.js';
import { runnerFor, type DeviceName } from '../models/runner.js';
import { Command } from 'commander';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError } from 'commander';
import { UsageError, VitkitError, expected } from '../errors.js';
import { cleanStaleTemps, makeDirs } from '../io/files.js';
import { IMAGE_EXTENSIONS } from '../io/image.js';
import { collectImages } from '../embed/embed.js';
import { parseFrameRef } from '../io/medical.js';
import { HEAD_FUSIONS, type HeadFusion } from '../explain/rollout.js';
import { COLORMAPS, type ColormapName } from '../explain/colormap.js';
import { renderOverlay, renderGrid, writePng } from '../explain/overlay.js';
import { EXPLAIN_METHODS, NO_CLASS_TOKEN_NOTE, explainOne, hottest, toRows, type ExplainMethod } from '../explain/explain.js';
import { deviceOption, loadForInference, parseChoice, parseFloatOpt, parseIntOpt } from './common.js';
import { clipLayoutOf, loadClip } from '../clip/load.js';
import { explainClipOne, textTargets } from '../explain/clip.js';
import { isYolosDir, loadYolos } from '../detect/load.js';
import { explainDetToken } from '../detect/explain.js';
import { writeDetectionsPng } from '../detect/draw.js';

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
  text: string[];
  template: string[];
  device: DeviceName;
  detToken?: number;
  shortestEdge?: number;
  longestEdge?: number;
}

const collect = (v: string, prev: string[]) => [...prev, v];

const choice = parseChoice;

function parseDiscard(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0 || n >= 1) throw new InvalidArgumentError(expected('a number in [0, 1)', '--discard-ratio', v).message);
  return n;
}

/**
 * Output file names per image: <stem>.rollout.png and <stem>.heads.png, distinct within one run
 * (frame k of a multi-frame DICOM file, <file>#frame=k, has the stem <name>.frame<k>).
 * Every image first claims its own stem; a repeated stem (d1/a.png, d2/a.png) takes the first
 * <stem>-<k> that no image claims, so `d1/a.png d2/a.png a-1.png` gives a, a-2 and a-1.
 * Stems are compared case-insensitively (case-insensitive file systems would merge them).
 */
export function outputNames(images: string[], out: string): { rollout: string; heads: string }[] {
  const stems = images.map((img) => {
    const { file, frame } = parseFrameRef(img); // scan.dcm#frame=3 -> scan.frame3
    return (path.basename(file, path.extname(file)) || 'image') + (frame === undefined ? '' : `.frame${frame}`);
  });
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

/**
 * File-name parts for text prompts: lower-case letters and digits joined by '-' (at most 40
 * characters, 'text' when none are left), distinct within the run like outputNames' stems.
 */
export function promptSlugs(texts: readonly string[]): string[] {
  const base = texts.map((t) => t.toLowerCase().normalize('NFKD').replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40).replace(/-+$/, '') || 'text');
  const claimed = new Set<string>();
  const first = base.map((b) => (claimed.has(b) ? false : (claimed.add(b), true)));
  return base.map((b, i) => {
    if (first[i]) return b;
    let k = 2;
    while (claimed.has(`${b}-${k}`)) k++;
    claimed.add(`${b}-${k}`);
    return `${b}-${k}`;
  });
}

/** Output files of `--text`: per image <stem>.<prompt>.rollout.png for each prompt and one <stem>.heads.png. */
export function textOutputNames(images: string[], texts: readonly string[], out: string): { rollouts: string[]; heads: string }[] {
  const slugs = promptSlugs(texts);
  return outputNames(images, out).map((n) => {
    const stem = n.rollout.slice(0, -'.rollout.png'.length);
    return { rollouts: slugs.map((s) => `${stem}.${s}.rollout.png`), heads: n.heads };
  });
}

/** `vitkit explain --text`: a CLIP checkpoint's image tower toward each prompt (one map per image per prompt). */
async function explainText(images: string[], o: ExplainCliOptions): Promise<void> {
  const names = o.out ? textOutputNames(images, o.text, o.out) : [];
  if (o.out) {
    if (existsSync(o.out) && !statSync(o.out).isDirectory()) throw new VitkitError(`Expected a folder for --out but ${o.out} is a file`);
    if (!o.overwrite) {
      for (const n of names) for (const f of [...n.rollouts, n.heads]) {
        if (existsSync(f)) throw new VitkitError(`Output ${f} already exists; pass --overwrite to replace it`);
      }
    }
  }
  const clip = loadClip(o.model);
  const targets = textTargets(clip, o.text, o.template);
  if (o.out) {
    makeDirs(o.out, '--out folder');
    cleanStaleTemps(o.out);
  }
  const results: Record<string, unknown>[] = [];
  const tower = await runnerFor(clip.model.visual, o.device); // the image tower on the device; the text tower ran on the host above
  for (let i = 0; i < images.length; i++) {
    const es = await explainClipOne(clip, images[i]!, targets, { discardRatio: o.discardRatio, tower: tower.deviceModel });
    const [GH, GW] = es[0]!.grid;
    let headsFile: string | undefined;
    if (o.out) {
      const e = es[0]!;
      const grid = await renderGrid(e.original, e.heads, GH, GW, e.box, { colormap: o.colormap, alpha: o.alpha, title: 'attn' });
      headsFile = names[i]!.heads;
      await writePng(headsFile, grid.image, { overwrite: o.overwrite ?? false });
    }
    for (let k = 0; k < es.length; k++) {
      const e = es[k]!;
      let file: string | undefined;
      if (o.out) {
        const ov = renderOverlay(e.original, e.rollout, GH, GW, e.box, { colormap: o.colormap, alpha: o.alpha, title: 'text' });
        file = names[i]!.rollouts[k]!;
        await writePng(file, ov.image, { overwrite: o.overwrite ?? false });
      }
      const hot = hottest(e.rollout, GW);
      if (o.json) {
        results.push({
          image: e.image, text: e.text, prompts: e.prompts, method: e.method, target: 'logit', grid: e.grid, token: e.token,
          discard_ratio: o.discardRatio, similarity: e.similarity, logit: e.logit, hottest: hot,
          rollout: toRows(e.rollout, GH, GW), heads: e.heads.map((h) => toRows(h, GH, GW)),
          ...(o.out ? { files: { rollout: file, heads: headsFile } } : {}),
        });
      } else {
        console.log(`${e.image}: ${JSON.stringify(e.text)} similarity ${e.similarity.toFixed(4)} (logit ${e.logit.toFixed(3)}), hottest patch row ${hot[0]} col ${hot[1]} of ${GH}x${GW}`);
        if (o.out) console.log(`  wrote ${file}${k === 0 ? ` and ${headsFile} (last block, ${e.heads.length} heads)` : ''}`);
      }
    }
  }
  if (o.json) console.log(JSON.stringify(results));
}

/** Output files of `--det-token k`: per image <stem>.det<k>.png (fused attention + the token's box) and <stem>.det<k>.heads.png. */
export function detOutputNames(images: string[], k: number, out: string): { map: string; heads: string }[] {
  return outputNames(images, out).map((n) => {
    const stem = n.rollout.slice(0, -'.rollout.png'.length);
    return { map: `${stem}.det${k}.png`, heads: `${stem}.det${k}.heads.png` };
  });
}

/** `vitkit explain --det-token k`: a YOLOS detector's det token k, its last block's attention over the patches and its box. */
async function explainDet(inputs: string[], o: ExplainCliOptions, cmd: Command): Promise<void> {
  if (!isYolosDir(o.model)) {
    throw new VitkitError(`--det-token explains a det token of a YOLOS detector, but ${o.model} is not one (expected yolos_config.json, or a config.json with "model_type": "yolos")`);
  }
  if (o.detToken === undefined) throw new VitkitError(`${o.model} is a YOLOS detector: pass --det-token k to map what det token k (from 0) looked at for its box`);
  for (const [flag, key] of [['--text', 'text'], ['--template', 'template'], ['--class', 'class'], ['--method', 'method'], ['--random-weights', 'randomWeights']] as const) {
    if (cmd.getOptionValueSource(key) === 'cli') {
      throw new UsageError(`--det-token maps the last block's attention of a det token (and, in --json, its rollout); ${flag} does not apply to it`);
    }
  }
  if (o.device !== 'cpu') throw new VitkitError(`explain --det-token runs YOLOS on --device cpu only for now (received --device ${o.device})`);
  const k = o.detToken;
  const images = collectImages(inputs);
  const names = o.out ? detOutputNames(images, k, o.out) : [];
  if (o.out) {
    if (existsSync(o.out) && !statSync(o.out).isDirectory()) throw new VitkitError(`Expected a folder for --out but ${o.out} is a file`);
    if (!o.overwrite) {
      for (const n of names) for (const f of [n.map, n.heads]) if (existsSync(f)) throw new VitkitError(`Output ${f} already exists; pass --overwrite to replace it`);
    }
  }
  const loaded = loadYolos(o.model);
  const Q = loaded.model.numDetTokens;
  if (k >= Q) throw new VitkitError(`Expected --det-token in 0..${Q - 1} (${o.model} has ${Q} det tokens) but received ${k}`);
  if (o.out) {
    makeDirs(o.out, '--out folder');
    cleanStaleTemps(o.out);
  }
  const results: Record<string, unknown>[] = [];
  for (let i = 0; i < images.length; i++) {
    const e = await explainDetToken(loaded, images[i]!, k, {
      headFusion: o.headFusion, discardRatio: o.discardRatio,
      ...(o.shortestEdge !== undefined ? { shortestEdge: o.shortestEdge } : {}), ...(o.longestEdge !== undefined ? { longestEdge: o.longestEdge } : {}),
    });
    const [GH, GW] = e.grid;
    if (o.out) {
      const ov = renderOverlay(e.original, e.attention, GH, GW, e.box, { colormap: o.colormap, alpha: o.alpha, title: `det${k}` });
      await writeDetectionsPng(names[i]!.map, ov.image, [e.detection], { overwrite: o.overwrite ?? false });
      const grid = await renderGrid(e.original, e.heads, GH, GW, e.box, { colormap: o.colormap, alpha: o.alpha, title: 'attn' });
      await writePng(names[i]!.heads, grid.image, { overwrite: o.overwrite ?? false });
    }
    const hot = hottest(e.attention, GW);
    const d = e.detection;
    if (o.json) {
      results.push({
        image: e.image, det_token: k, grid: e.grid, head_fusion: o.headFusion, discard_ratio: o.discardRatio,
        detection: d, hottest: hot, attention: toRows(e.attention, GH, GW), heads: e.heads.map((h) => toRows(h, GH, GW)),
        rollout: toRows(e.rollout, GH, GW), ...(o.out ? { files: { map: names[i]!.map, heads: names[i]!.heads } } : {}),
      });
    } else {
      console.log(`${e.image}: det token ${k} predicts ${d.label} (${d.label_id}) ${(d.score * 100).toFixed(1)}% [${d.box.map((v) => v.toFixed(1)).join(', ')}]; ` +
        `last-block attention (${o.headFusion} over heads) hottest patch row ${hot[0]} col ${hot[1]} of ${GH}x${GW}`);
      if (o.out) console.log(`  wrote ${names[i]!.map} and ${names[i]!.heads} (${e.heads.length} heads)`);
    }
  }
  if (o.json) console.log(JSON.stringify(results));
}

export function explainCommand(): Command {
  return imageOptions(deviceOption(new Command('explain')))
    .description('attention maps: rollout over all blocks and the last block\'s heads, as overlays on each image (PNG) and/or as patch-grid maps (--json)')
    .requiredOption('-m, --model <dir|preset>', 'checkpoint directory or preset name, or a Hub repo org/name[@revision] (fetched into the Hugging Face cache)')
    .option('-o, --out <dir>', 'folder for <image>.rollout.png and <image>.heads.png (with --text: <image>.<prompt>.rollout.png per prompt; with --det-token k: <image>.det<k>.png and <image>.det<k>.heads.png); created if missing')
    .option('--json', 'print the maps on the patch grid as JSON')
    .option('--method <name>', `${EXPLAIN_METHODS.join(' | ')}`, choice('--method', EXPLAIN_METHODS), 'rollout' as ExplainMethod)
    .option('--head-fusion <mode>', `how rollout fuses the heads of a block: ${HEAD_FUSIONS.join(' | ')}`, choice('--head-fusion', HEAD_FUSIONS), 'mean' as HeadFusion)
    .option('--discard-ratio <r>', 'fraction in [0, 1) of the lowest attentions of each block dropped (never the class token\'s own)', parseDiscard, 0)
    .option('--class <index|label>', 'grad-rollout: the class to explain (default: the predicted class)')
    .option('--text <prompt>', 'CLIP checkpoint: explain what in the image matches this prompt (gradient-weighted rollout toward its embedding); repeat for several', collect, [] as string[])
    .option('--template <text>', 'with --text: a prompt template with {} for the text; repeat for an ensemble (as zeroshot)', collect, [] as string[])
    .option('--colormap <name>', COLORMAPS.join(' | '), choice('--colormap', COLORMAPS), 'viridis' as ColormapName)
    .option('--alpha <a>', 'heat-map opacity over the image, in [0, 1]', parseFloatOpt('--alpha', 0, 1), 0.5)
    .option('--overwrite', 'replace existing PNGs in --out')
    .option('--random-weights', 'allow a preset name without weights (random initialization)')
    .option('--det-token <k>', 'YOLOS detector: det token k (from 0) — the last block\'s attention of that token over the patches (<image>.det<k>.png, with the box it predicts, and <image>.det<k>.heads.png per head)', parseIntOpt('--det-token', 0))
    .option('--shortest-edge <px>', 'with --det-token: YOLOS\'s resize, the short side to this (default: the checkpoint\'s preprocessor, else 800)', parseIntOpt('--shortest-edge'))
    .option('--longest-edge <px>', 'with --det-token: unless the long side would pass this (default: the checkpoint\'s, else 1333)', parseIntOpt('--longest-edge'))
    .argument('<images...>', `image files or folders (${IMAGE_EXTENSIONS.join(', ')})`)
    .action(async (inputs: string[], o: ExplainCliOptions, cmd: Command) => {
      if (!o.out && !o.json) throw new UsageError('Expected --out <dir> for the PNGs and/or --json for the maps but received neither');
      if (o.detToken !== undefined || isYolosDir(o.model)) {
        await explainDet(inputs, o, cmd);
        return;
      }
      if (o.shortestEdge !== undefined || o.longestEdge !== undefined) throw new UsageError('--shortest-edge / --longest-edge resize images for a YOLOS detector; pass them with --det-token');
      if (o.template.length && !o.text.length) throw new UsageError('--template fills in the prompts of --text; pass --text with it');
      const clipLayout = clipLayoutOf(o.model);
      const isClip = clipLayout !== null;
      if (o.text.length) {
        if (o.class !== undefined) throw new UsageError('--class explains a classifier\'s class and --text a CLIP model\'s prompt; pass one of them');
        if (cmd.getOptionValueSource('method') === 'cli' && o.method !== 'grad-rollout') {
          throw new UsageError(`--text explains with gradient-weighted rollout toward the prompt; --method ${o.method} does not use it`);
        }
        if (!isClip) {
          throw new VitkitError(`--text explains a CLIP checkpoint toward a prompt, but ${o.model} is not one (expected open_clip_config.json + open_clip_model.safetensors, or a Hugging Face CLIPModel)`);
        }
        await explainText(collectImages(inputs), o);
        return;
      }
      // an HF CLIPModel without --text: its image tower alone, as before (loadModel reads it); open_clip's layout has no such reading
      if (clipLayout === 'open_clip') throw new VitkitError(`${o.model} is a CLIP checkpoint: pass --text <prompt> to explain what in each image matches it`);
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
        makeDirs(o.out, '--out folder');
        cleanStaleTemps(o.out);
      }
      const loaded = loadForInference(o.model, { randomWeights: o.randomWeights ?? false, command: 'explain' });
      const results: Record<string, unknown>[] = [];
      let noted = false;
      const runner = await runnerFor(loaded.model, o.device);
      for (let i = 0; i < images.length; i++) {
        const e = await explainOne(loaded, images[i]!, {
          method: o.method, headFusion: o.headFusion, discardRatio: o.discardRatio, runner,
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
