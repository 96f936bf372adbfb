/**
 * `vitkit export`: the model as an ONNX graph (opset 17) for onnxruntime, Triton or any ONNX engine.
 * A YOLOS checkpoint exports at one input size (--img-size, default its position-embedding size) with
 * outputs pred_logits and pred_boxes.
 */
import { Command, InvalidArgumentError } from 'commander';
import { statSync } from 'node:fs';
import { UsageError } from '../errors.js';
import { loadModel } from '../checkpoint/checkpoint.js';
import { writeFileAtomic } from '../io/files.js';
import { VisionTransformer } from '../models/vit.js';
import { imgHW } from '../models/config.js';
import { VitkitError } from '../errors.js';
import { exportOnnx, exportYolosOnnx, OPSET, type ExportOutput } from '../export/onnx.js';
import { isYolosDir, loadYolos } from '../detect/load.js';
import { checkOutput } from './common.js';
import { packageVersion } from './version.js';

const OUTPUTS: readonly ExportOutput[] = ['logits', 'pre_logits'];

function parseImgSize(v: string): [number, number] {
  const m = /^\s*(\d+)\s*(?:[x,]\s*(\d+))?\s*$/.exec(v);
  if (!m) throw new InvalidArgumentError(`Expected --img-size as height,width (or one side for both) in pixels but received ${JSON.stringify(v)}`);
  const h = Number(m[1]), w = Number(m[2] ?? m[1]);
  if (!(h >= 1 && w >= 1)) throw new InvalidArgumentError(`Expected --img-size sides >= 1 but received ${JSON.stringify(v)}`);
  return [h, w];
}

export function exportCommand(): Command {
  return new Command('export')
    .description(`write the model as an ONNX graph (opset ${OPSET}): input pixel_values (B, C, H, W) float32, outputs logits and/or pre_logits`)
    .requiredOption('--model <dir>', 'checkpoint directory, preset name or hub id')
    .option('--format <format>', 'output format: onnx', 'onnx')
    .requiredOption('--out <file>', 'output file (model.onnx)')
    .option('--dynamic-batch', 'symbolic batch dimension (default: batch 1)')
    .option('--outputs <list>', 'comma-separated graph outputs: logits, pre_logits', 'logits')
    .option('--img-size <h,w>', 'YOLOS: the fixed input height,width of the graph (default: the checkpoint\'s position-embedding size)', parseImgSize)
    .option('--overwrite', 'replace --out if it exists')
    .action((o: { model: string; format: string; out: string; dynamicBatch?: boolean; outputs: string; imgSize?: [number, number]; overwrite?: boolean }, cmd: Command) => {
      if (o.format !== 'onnx') throw new UsageError(`Expected --format onnx but received ${JSON.stringify(o.format)}`);
      if (isYolosDir(o.model)) {
        if (cmd.getOptionValueSource('outputs') === 'cli') throw new UsageError('A YOLOS export has the outputs pred_logits and pred_boxes; --outputs is for classifiers');
        checkOutput(o.out, o.overwrite);
        try { if (statSync(o.out).isDirectory()) throw new VitkitError(`--out ${o.out} is a directory; expected a file name such as model.onnx`); } catch (e) { if (e instanceof VitkitError) throw e; }
        const { model } = loadYolos(o.model);
        const bytes = exportYolosOnnx(model, { dynamicBatch: !!o.dynamicBatch, producerVersion: packageVersion(), ...(o.imgSize ? { imgSize: o.imgSize } : {}) });
        writeFileAtomic(o.out, bytes, { overwrite: !!o.overwrite });
        const [h, w] = o.imgSize ?? imgHW(model.config.vit);
        console.log(`wrote ${o.out} (${(bytes.length / 2 ** 20).toFixed(1)} MiB, ONNX opset ${OPSET}, YOLOS at ${h}x${w}, outputs pred_logits, pred_boxes${o.dynamicBatch ? ', dynamic batch' : ', batch 1'})`);
        return;
      }
      if (o.imgSize) throw new UsageError('--img-size sets a YOLOS export\'s input size; classifiers export at their configured size');
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
