/**
 * vitkit's public surface: everything a program uses is re-exported here, in groups.
 * Internal modules may change; this file is the contract.
 */

// Core
export { Tensor, numel } from './tensor.js';
export { VitkitError } from './errors.js';
export { getBackend, setThreads, registerBackend, hasBackend, type Backend, type BackendName, type BackendFactory } from './backend/index.js';

// The model
export {
  type ViTConfig, type GlobalPool, type PosEmbedKind, type Activation, type MlpLayer, type TokenLayout,
  DEFAULT_CONFIG, resolveConfig, dims, imgHW, tokenLayout,
} from './models/config.js';
export { PRESETS, getPreset, presetConfig, archDefaults, type Preset, type PretrainedCfg } from './models/presets.js';
export {
  VisionTransformer, vitParamSpecs, vitMacs, emptyCache,
  type ForwardOptions, type FeaturesOutput, type ForwardCache, type BlockCache, type HeadsOutput,
} from './models/vit.js';
export { type Model, type ModelFamily, registerFamily, getFamily, familyNames } from './models/model.js';
export { createModel, VIT_FAMILY, type CreateOptions } from './models/registry.js';
export { initHead, mulberry32 } from './models/init.js';
export { resampleAbsPosEmbed, sincos2dPosEmbed } from './models/pos_embed.js';
export { ParamTable, type ParamSpec } from './nn/params.js';
export { softmax, topK, argmaxRows } from './nn/functional.js';

// Checkpoints and files
export {
  loadModel, presetModel, saveCheckpoint, saveHfCheckpoint, loadStateDict, initWeights, configFromTimm, configFromHf, timmConfigJson,
  type LoadedModel, type LoadOptions,
} from './io/checkpoint.js';
export { HF_LAYOUTS, hfLayoutFor, type HfLayout } from './models/families/index.js';
export {
  readSafetensors, parseSafetensors, serializeSafetensors, writeSafetensors, SafetensorsFile,
  type DType, type StEntry, type StTensorIn,
} from './io/safetensors.js';
export { imagenetLabels, labelsFor } from './io/labels.js';
export { readSafetensorsHeader } from './io/safetensors.js';
export { checkConfigAgainstWeights, checkConfigResources, checkFinite, checkFeatureShape } from './io/validate.js';

// Images
export { loadImage, type RawImage } from './io/image.js';
export { resizePil, interpolate, type Filter } from './io/resample.js';
export {
  preprocessImage, preprocessBatch, preprocessForDisplay, preprocessFromTimm, preprocessFromHf,
  type PreprocessConfig,
} from './io/preprocess.js';

// Training
export { Trainer, trainerStateTensors, trainerStateFrom, type TrainerOptions, type StepResult, type TrainerState } from './train/trainer.js';
export { saveTrainerState, loadTrainerState } from './train/trainer_file.js';
export { vitBackward, type BackwardOptions } from './train/backward.js';
export { crossEntropy } from './train/loss.js';
export { AdamW, clipGradNorm, ModelEma, paramGroups, type AdamWOptions } from './train/optim.js';
export { LrSchedule, type ScheduleOptions } from './train/schedule.js';
export { trainRun, type TrainSettings, type RunOptions, type RunResult } from './train/loop.js';
export { openData, type DataSource } from './data/open.js';

// Explanation and embeddings
export { attentionRollout, gradientRollout, fuseHeads, type HeadFusion, type RolloutOptions } from './explain/rollout.js';
export { attentionGradients } from './explain/gradients.js';
export { explainImages, explainOne, type ExplainOptions, type Explanation } from './explain/explain.js';
export { explainClipImages, explainClipOne, clipAttentionGradients, textTargets, similarityScoreGrad, type ClipExplanation, type ClipExplainOptions, type ClipTextTarget, type ClipAttentionGradients } from './explain/clip.js';
export { embedFiles, embedPixels, writeEmbeddings } from './embed/embed.js';
export { buildSupport, classifyQueries, type SupportSet, type FewshotResult } from './embed/fewshot.js';
export { classPrototypes, prototypeScores, nearestPrototype, cosine, l2normalize } from './embed/prototypes.js';

// CLIP: both towers, the open_clip and Hugging Face layouts, zero-shot classification, contrastive training
export { ClipModel, normalizeRows, similarityLogits, softmaxRows, type ClipOutput, type ClipCache } from './models/clip/model.js';
export { type ClipConfig, configFromOpenClip, configFromHfClip, LOGIT_SCALE_MAX } from './models/clip/config.js';
export { loadClip, saveClip, clipLayoutOf, type LoadedClip, type ClipLayout } from './models/clip/load.js';
export { hfKeyMap, openAiToHf, hfToOpenAi, type HfEntry } from './models/clip/names.js';
export { encodeImage, encodeText, zeroShotClassifier, ZeroShotClassifier, DEFAULT_TEMPLATES, type ZeroShotPrediction } from './models/clip/zeroshot.js';
export { ClipIndex, buildClipIndex, readClipIndex, type SearchHit, type IndexedFile } from './models/clip/image_index.js';
export { clipLoss, type ClipLossResult } from './train/clip_loss.js';
export { ClipTrainer, openClipExcludeFromDecay, type ClipTrainerOptions, type ClipStepResult } from './train/clip_train.js';
// Text (CLIP's tokenizer)
export { BpeTokenizer, bytesToUnicode, toInt64, type BpeTokenizerSpec, type TextClean } from './text/bpe.js';
export { openAiTokenizer, hfTokenizerJson, hfVocabMerges, type HfVocabOptions } from './text/vocab.js';
export { fixText, htmlUnescape, cleanLower } from './text/clean.js';
export { clipTokenizer, loadTokenizer, type LoadTokenizerOptions } from './node/text.js';

// Async inference off the main thread (a worker per model) and the classify one-liner
export {
  InferenceSession, classify, embedImages, session as inferenceSession, closeSessions, setModelResolver, localModelResolver,
  type ImageInput, type Classification, type ClassifyOptions, type SessionOptions, type ModelResolver, type ModelInfo,
} from './node/inference.js';
// The Hugging Face Hub (downloads into the cache shared with Python)
export {
  resolveModelDir, downloadModel, parseHubSpec, hubCacheDir, hubEndpoint,
  type HubOptions, type HubSpec, type HubLayout, type DownloadedModel,
} from './hub/index.js';

// CLI entry (for embedding the command line in other tools)
export { run as runCli } from './cli/main.js';

// WebGPU (Dawn through the optional `webgpu` package in Node, navigator.gpu in browsers): device buffers and every op
export { createWebGpuBackend, listAdapters, WebGpuBackend, type WebGpuOptions, type AdapterListing } from './backend/webgpu/index.js';
export type { DeviceBackend, DeviceTensor, DeviceDType } from './backend/device.js';
