/** `vitkit export`: the model as an ONNX graph (opset 17) for onnxruntime, Triton or any ONNX engine. */
import { Command } from 'commander';
import { statSync } from 'node:fs';
import { UsageError } from '../errors.js';
import { loadModel } from '../io/checkpoint.js';
import { writeFileAtomic } from '../io/files.js';
import { VisionTransformer } from '../models/vit.js';
import { VitkitError } from '../errors.js';
import { exportOnnx, OPSET, type ExportOutput } from '../export/onnx.js';
import { checkOutput } from './common.js';
import { packageVersion } from './version.js';

const OUTPUTS: readonly ExportOutput[] = ['logits', 'pre_logits'];

export function exportCommand(): Command {
  return new Command('export')
    .description(`write the model as an ONNX graph (opset ${OPSET}): input pixel_values (B, C, H, W) float32, outputs logits and/or pre_logits`)
    .requiredOption('--model <dir>', 'checkpoint directory, preset name or hub id')
    .option('--format <format>', 'output format: onnx', 'onnx')
    .requiredOption('--out <file>', 'output file (model.onnx)')
    .option('--dynamic-batch', 'symbolic batch dimension (default: batch 1)')
    .option('--outputs <list>', 'comma-separated graph outputs: logits, pre_logits', 'logits')
    .option('--overwrite', 'replace --out if it exists')
    .action((o: { model: string; format: string; out: string; dynamicBatch?: boolean; outputs: string; overwrite?: boolean }) => {
      if (o.format !== 'onnx') throw new UsageError(`Expected --format onnx but received ${JSON.stringify(o.format)}`);
      const outputs = o.outputs.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
      for (const s of outputs) if (!(OUTPUTS as string[]).includes(s)) throw new UsageError(`Expected --outputs from ${OUTPUTS.join(', ')} but received ${JSON.stringify(s)}`);
      if (new Set(outputs).size !== outputs.length) throw new UsageError(`--outputs lists an output twice: ${o.outputs}`);
      checkOutput(o.out, o.overwrite);
      try { if (statSync(o.out).isDirectory()) throw new VitkitError(`--out ${o.out} is a directory; expected a file name such as model.onnx`); } catch (e) { if (e instanceof VitkitError) throw e; }
      const lm = loadModel(o.model);
      if (!(lm.model instanceof VisionTransformer)) throw new VitkitError(`ONNX export covers the ViTConfig family (vit, deit, dinov2, clip image tower, siglip); ${lm.name} is a ${lm.model.family} model`);
      const bytes = exportOnnx(lm.model.config, lm.model.params, { dynamicBatch: !!o.dynamicBatch, outputs: outputs as ExportOutput[], producerVersion: packageVersion() });
      writeFileAtomic(o.out, bytes, { overwrite: !!o.overwrite });
      console.log(`wrote ${o.out} (${(bytes.length / 2 ** 20).toFixed(1)} MiB, ONNX opset ${OPSET}, outputs ${outputs.join(', ')}${o.dynamicBatch ? ', dynamic batch' : ', batch 1'})`);
    });
}
