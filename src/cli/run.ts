import { Command } from 'commander';
import { loadModel } from '../checkpoint/checkpoint.js';
import { readSafetensors, writeSafetensors, type StTensorIn } from '../io/safetensors.js';
import { Tensor } from '../tensor.js';
import { UsageError, VitkitError, shapeStr } from '../errors.js';
import { checkOutput, deviceOption, parseIntOpt } from './common.js';
import { runnerFor, type DeviceName } from '../models/runner.js';
import { checkPixelShape } from '../models/vit.js';
import { attentionRollout } from '../explain/rollout.js';
import { CLIP_RUN_OUTPUTS, runClip } from '../clip/run.js';
import { clipLayoutOf } from '../clip/load.js';
import { MAE_RUN_OUTPUTS, runMae } from '../mae/run.js';
import { isMaeDir } from '../mae/load.js';
import { YOLOS_RUN_OUTPUTS, runYolos } from '../detect/run.js';
import { isYolosDir } from '../detect/load.js';
import { imageOptions } from './image_options.js';
import { preprocessFrames } from '../io/preprocess.js';

export const RUN_OUTPUTS = ['pixel_values', 'logits', 'pre_logits', 'features', 'hidden_states', 'attentions', 'rollout', 'cls_logits', 'dist_logits'] as const;
export type RunOutput = (typeof RUN_OUTPUTS)[number];

export function parseOutputs(s: string): RunOutput[] {
  const names = s.split(',').map((x) => x.trim()).filter(Boolean);
  for (const n of names) {
    if (!(RUN_OUTPUTS as readonly string[]).includes(n) && !(CLIP_RUN_OUTPUTS as readonly string[]).includes(n) && !(MAE_RUN_OUTPUTS as readonly string[]).includes(n)
      && !(YOLOS_RUN_OUTPUTS as readonly string[]).includes(n)) {
      throw new UsageError(`Unknown output ${JSON.stringify(n)} in --outputs; expected a comma-separated list of ${RUN_OUTPUTS.join(', ')} (CLIP: ${CLIP_RUN_OUTPUTS.join(', ')}; MAE: ${MAE_RUN_OUTPUTS.join(', ')}; YOLOS: ${YOLOS_RUN_OUTPUTS.join(', ')})`);
    }
  }
  if (!names.length) throw new UsageError('--outputs is empty; expected e.g. logits,features');
  return names as RunOutput[];
}


/**
 * Run a model on `pixel_values` from a safetensors file and return the named outputs:
 * logits (timm's eval output: DeiT's mean of both heads; pre_logits when the model has no head, as timm's
 * Identity head), pre_logits (the head input), features (B, N, D) after the final norm, hidden_states.{0..L}
 * (0 = block 0 input), attentions.{0..L-1} (B, NH, N, N), rollout, and for DeiT cls_logits / dist_logits.
 */
export async function runModel(modelSource: string, input: string, outputs: RunOutput[], device: DeviceName = 'cpu', seed = 0, image?: string): Promise<Record<string, StTensorIn>> {
  if (image !== undefined && (isMaeDir(modelSource) || isYolosDir(modelSource))) throw new UsageError(`run --image: MAE and YOLOS checkpoints (${modelSource}) take --input pixel_values; detect or reconstruct preprocess images for them`);
  if (isMaeDir(modelSource)) {
    if (device === 'webgpu') throw new VitkitError(`run --device ${device}: MAE models (${modelSource}) run on the cpu device for now`);
    return runMae(modelSource, input, outputs, { seed });
  }
  if (isYolosDir(modelSource)) {
    if (device === 'webgpu') throw new VitkitError(`run --device ${device}: YOLOS models (${modelSource}) run on the cpu device for now`);
    return runYolos(modelSource, input, outputs);
  }
  if (clipLayoutOf(modelSource)) {
    if (device === 'webgpu') throw new VitkitError(`run --device ${device} runs the ViT family; CLIP models (${modelSource}) run on the cpu device for now`);
    if (image !== undefined) throw new VitkitError(`run --image runs ViT-family models; for the CLIP model ${modelSource} pass pixel_values with --input`);
    return runClip(modelSource, input, outputs);
  }
  const clipOnly = outputs.filter((o) => (CLIP_RUN_OUTPUTS as readonly string[]).includes(o));
  if (clipOnly.length) throw new VitkitError(`Output ${clipOnly.join(', ')} needs a CLIP model (open_clip_config.json or a Hugging Face CLIPModel) but ${modelSource} is not one`);
  const { model, preprocess } = loadModel(modelSource);
  let pv: { shape: number[]; data: Float32Array };
  if (image !== undefined) {
    // --image: the model's own preprocessing (windowing included) makes pixel_values (F, C, H, W)
    const { data, frames } = await preprocessFrames(image, preprocess, image);
    pv = { shape: [frames, preprocess.channels, preprocess.height, preprocess.width], data };
  } else {
    const st = readSafetensors(input);
    if (!st.has('pixel_values')) {
      throw new VitkitError(`${input} has no tensor "pixel_values" (B, C, H, W); it has: ${st.keys().join(', ') || 'no tensors'}`);
    }
    pv = st.f32('pixel_values');
  }
  if (pv.shape.length !== 4) throw new VitkitError(`pixel_values in ${input} must be (B, C, H, W) but has shape ${shapeStr(pv.shape)}`);
  const x = new Tensor(pv.shape, pv.data);
  const wantAttn = outputs.includes('attentions') || outputs.includes('rollout');
  const wantDist = outputs.includes('cls_logits') || outputs.includes('dist_logits');
  if (wantDist && (!model.config.distilled || model.config.num_classes === 0)) {
    throw new VitkitError(`--outputs cls_logits/dist_logits need a distilled model with a head (DeiT); ${modelSource} has distilled ${model.config.distilled}, num_classes ${model.config.num_classes}`);
  }
  checkPixelShape(model.config, x.shape);
  const runner = await runnerFor(model, device);
  const { features: f, heads } = await runner.forwardAll(x, { hiddenStates: outputs.includes('hidden_states'), attentions: wantAttn });
  runner.release();
  const res: Record<string, StTensorIn> = {};
  if (outputs.includes('pixel_values')) res['pixel_values'] = { shape: x.shape, data: x.data };
  const put = (name: string, t: Tensor) => { res[name] = { shape: t.shape, data: t.data }; };
  if (outputs.includes('logits')) put('logits', heads.logits ?? heads.preLogits);
  if (outputs.includes('pre_logits')) put('pre_logits', heads.preLogits);
  if (wantDist) {
    if (!heads.clsLogits || !heads.distLogits) throw new VitkitError('This build of the model does not expose the two DeiT heads (forwardHeads)');
    if (outputs.includes('cls_logits')) put('cls_logits', heads.clsLogits);
    if (outputs.includes('dist_logits')) put('dist_logits', heads.distLogits);
  }
  if (outputs.includes('features')) put('features', f.features);
  if (f.hiddenStates) f.hiddenStates.forEach((t, i) => put(`hidden_states.${i}`, t));
  if (outputs.includes('attentions')) f.attentions!.forEach((t, i) => put(`attentions.${i}`, t));
  if (outputs.includes('rollout')) put('rollout', attentionRollout(f.attentions!));
  return res;
}

export function runCommand(): Command {
  return imageOptions(deviceOption(new Command('run')))
    .description('run a model on pixel_values (B, C, H, W) from a safetensors file (or an image file, preprocessed) and write the chosen outputs')
    .requiredOption('-m, --model <dir|preset>', 'checkpoint directory or preset name, or a Hub repo org/name[@revision] (fetched into the Hugging Face cache)')
    .option('-i, --input <file>', 'safetensors file with pixel_values (B, C, H, W) (CLIP: and/or input_ids (T, L))')
    .option('--image <file>', "an image (DICOM, 16-bit PNG/TIFF, photo) put through the model's preprocessing instead of --input; every DICOM frame is one batch row")
    .requiredOption('-o, --output <file>', 'safetensors file to write')
    .option('--outputs <list>', `comma-separated: ${RUN_OUTPUTS.join(', ')}`, parseOutputs, ['logits'] as RunOutput[])
    .option('--overwrite', 'replace the output file if it exists')
    .option('--seed <n>', 'MAE: seed of the masking noise when the input has no noise tensor', parseIntOpt('--seed', 0), 0)
    .action(async (o: { model: string; input?: string; image?: string; output: string; outputs: RunOutput[]; overwrite?: boolean; device: DeviceName; seed: number }) => {
      if ((o.input === undefined) === (o.image === undefined)) throw new UsageError('run needs exactly one of --input <file.safetensors> and --image <file>');
      checkOutput(o.output, o.overwrite);
      const res = await runModel(o.model, o.input ?? '', o.outputs, o.device, o.seed, o.image);
      writeSafetensors(o.output, res, { producer: 'vitkit' }, { overwrite: o.overwrite ?? false });
      console.log(`wrote ${Object.keys(res).length} tensors to ${o.output}: ${Object.entries(res).map(([k, v]) => `${k} ${shapeStr(v.shape)}`).join(', ')}`);
    });
}
