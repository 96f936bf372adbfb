/**
 * vitkit's core: the part that runs wherever JavaScript does (a browser bundle, a worker, Node),
 * with no Node-only import (node:*, fs, sharp, commander, worker_threads, cli-progress) and no
 * native addon loader. Models, layers, training, rollout, embeddings' prototypes, the tokenizer,
 * checkpoints and safetensors from bytes (loadModelFromBytes) and preprocessing of decoded
 * pixels; the backends are the reference one (plain TypeScript, the default here) and WebGPU
 * (navigator.gpu in browsers). The Node entry
 * (index.ts) re-exports all of this and adds files, images, the native addon, the Hub and the CLI;
 * it registers the native backend, which getBackend() then returns by default.
 * test/core/core_imports.test.ts walks this file's import graph to keep it so. The engine's
 * internals (the op list, the devices' arenas and parameter tables, the model core and its backward)
 * are in internal.ts (`vitkit/internal`), not here.
 */

// Tensors, errors, backends
export { Tensor, numel } from './tensor.js';
export { VitkitError } from './errors.js';
export {
  getBackend, setThreads, registerBackend, hasBackend, type Backend, type BackendName, type BackendFactory,
} from './backend/select.js';
export { reference as referenceBackend } from './backend/reference.js';
export { createWebGpuBackend, listAdapters, WebGpuBackend, type WebGpuOptions, type AdapterListing } from './backend/webgpu/index.js';

// The model
export {
  type ViTConfig, type GlobalPool, type PosEmbedKind, type Activation, type MlpLayer,
  DEFAULT_CONFIG, resolveConfig, imgHW,
} from './models/config.js';
export { PRESETS, getPreset, presetConfig, archDefaults, type Preset, type PretrainedCfg } from './models/presets.js';
export { VisionTransformer, vitMacs, type ForwardOptions, type FeaturesOutput, type HeadsOutput } from './models/vit.js';
export type { ComputeDevice } from './models/device.js';
export {
  runnerFor, webgpuDevice, openDevice, closeDevices, checkDeviceName, DEVICE_NAMES, type DeviceName, type DeviceKind, type Device, type Runner, type ForwardAllOptions,
} from './models/runner.js';
export { type Model, type ModelFamily, registerFamily, getFamily, familyNames } from './models/model.js';
export { createModel, VIT_FAMILY, type CreateOptions } from './models/registry.js';
export { initHead, initWeights } from './models/init.js';
export { mulberry32 } from './data/rng.js';
export { resampleAbsPosEmbed, sincos2dPosEmbed } from './models/pos_embed.js';
export { HF_LAYOUTS, hfLayoutFor, type HfLayout } from './checkpoint/layouts/index.js';
export { ParamTable, type ParamSpec } from './nn/params.js';
export { softmax, topK, argmaxRows } from './nn/functional.js';

// Checkpoints from bytes: config.json parsed, model.safetensors as bytes (reading a directory is the Node entry's loadModel)
export {
  loadModelFromBytes, configFromTimm, configFromHf, loadStateDict, timmConfigJson,
  type LoadedModel, type LoadOptions, type BytesLoadOptions, type CheckpointBytes, type CheckpointFileNames,
} from './checkpoint/checkpoint_core.js';
export { checkConfigResources, checkFinite, checkFeatureShape } from './checkpoint/validate_core.js';

// safetensors from bytes (reading and writing files is in the Node entry)
export {
  parseSafetensors, parseSafetensorsHeader, serializeSafetensors, SafetensorsFile,
  type DType, type StEntry, type StTensorIn,
} from './io/safetensors_bytes.js';

// Preprocessing of decoded 8-bit pixels (decoding files with sharp is in the Node entry)
export { convertPixels, cropImage, type RawImage } from './io/pixels.js';
export { resizePil, type Filter } from './io/resample.js';
export { interpolate } from './nn/interpolate.js';
export {
  preprocessFromTimm, preprocessFromHf, geometry, toPixelValues, checkPreprocessForModel, type PreprocessConfig,
} from './io/preprocess_pixels.js';

// Training
export {
  Trainer, trainerStateTensors, trainerStateFrom, type TrainerOptions, type StepResult, type TrainerState,
} from './train/trainer.js';
export { crossEntropy } from './train/loss.js';
export { AdamW, clipGradNorm, ModelEma, paramGroups, type AdamWOptions } from './train/optim.js';
export { LrSchedule, type ScheduleOptions } from './train/schedule.js';

// Explanation and embeddings
export { attentionRollout, gradientRollout, fuseHeads, type HeadFusion, type RolloutOptions } from './explain/rollout.js';
export { attentionGradients, type AttentionGradients, type GradientTarget } from './explain/gradients.js';
export { classPrototypes, prototypeScores, nearestPrototype, cosine, l2normalize } from './embed/prototypes.js';

// Text (CLIP's tokenizer, from the vocabulary's text; reading its files is in the Node entry)
export { BpeTokenizer, bytesToUnicode, toInt64, type BpeTokenizerSpec, type TextClean } from './text/bpe.js';
export { openAiTokenizer, hfTokenizerJson, hfVocabMerges, type HfVocabOptions } from './text/vocab.js';
export { fixText, htmlUnescape, cleanLower } from './text/clean.js';
