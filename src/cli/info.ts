import { Command } from 'commander';
import { loadModel } from '../io/checkpoint.js';
import { existsSync } from 'node:fs';
import { dims, imgHW, resolveConfig, type ViTConfig } from '../models/config.js';
import { vitMacs, vitParamSpecs } from '../models/vit.js';
import { PRESETS, getPreset, presetConfig } from '../models/presets.js';
import { preprocessFromTimm } from '../io/preprocess.js';

/** Configuration, parameter count and GMACs per image, and how the cost grows with image size. */
export function describeModel(source: string): Record<string, unknown> {
  // a preset needs no weights to be described: build its config only (vit_large would allocate 1.2 GB)
  // (timm.create_model(name): the registration's kwargs plus the default tag's num_classes and input size)
  const isPreset = !existsSync(source) && source in PRESETS;
  const lm = isPreset
    ? (() => {
      const config = presetConfig(source);
      return { name: source, format: 'preset', config, params: 0, preprocess: preprocessFromTimm({ ...getPreset(source).pretrained_cfg }, imgHW(config), config.in_chans) };
    })()
    : (() => { const m = loadModel(source); return { name: m.name, format: m.format, config: m.model.config, params: m.model.numParams, preprocess: m.preprocess }; })();
  const c = lm.config, d = dims(c);
  const params = vitParamSpecs(c).reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
  const [h, w] = imgHW(c);
  const sizes = h === w ? [h, ...[224, 384, 448, 512].filter((s) => s !== h && s % c.patch_size === 0)] : [h];
  const scaling = sizes
    .sort((a, b) => a - b)
    .map((s) => {
      const cs: ViTConfig = resolveConfig({ ...c, img_size: h === w ? s : [h, w] });
      return { img_size: s, tokens: dims(cs).N, gmacs: vitMacs(cs) / 1e9 };
    });
  return {
    name: lm.name, format: lm.format, config: c, tokens: d.N, params,
    gmacs: vitMacs(c) / 1e9, preprocess: lm.preprocess, scaling,
  };
}

export function infoCommand(): Command {
  return new Command('info')
    .description('print the configuration, parameter count and GMACs per image of a preset or checkpoint')
    .argument('<model>', 'preset name (e.g. vit_base_patch16_224) or checkpoint directory')
    .option('--json', 'print one JSON object')
    .action((source: string, o: { json?: boolean }) => {
      const info = describeModel(source);
      if (o.json) {
        console.log(JSON.stringify(info));
        return;
      }
      const c = info['config'] as ViTConfig;
      console.log(`${info['name']} (${info['format']})`);
      for (const [k, v] of Object.entries(c)) console.log(`  ${k.padEnd(19)} ${Array.isArray(v) ? `[${v.join(', ')}]` : v}`);
      console.log(`  ${'tokens'.padEnd(19)} ${info['tokens']}`);
      console.log(`params: ${((info['params'] as number) / 1e6).toFixed(2)}M (${(info['params'] as number).toLocaleString('en-US')})`);
      console.log(`GMACs per image: ${(info['gmacs'] as number).toFixed(2)}`);
      console.log('cost by image size (attention grows with the square of the token count):');
      for (const s of info['scaling'] as { img_size: number; tokens: number; gmacs: number }[]) {
        console.log(`  ${String(s.img_size).padStart(4)} px  ${String(s.tokens).padStart(5)} tokens  ${s.gmacs.toFixed(2).padStart(8)} GMACs`);
      }
    });
}
