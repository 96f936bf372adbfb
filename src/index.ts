/**
 * vitkit's public surface: everything a program uses is re-exported here, in groups.
 * Internal modules may change; this file is the contract. It is the core (core.ts: everything
 * that runs without Node, re-exported whole so the two cannot drift) plus what needs Node: files,
 * images, the native backend, the Hub, workers and the CLI. test/core/surface.test.ts holds the
 * list of names this surface must keep. The engine's internals are not here: they are
 * internal.ts (`vitkit/internal`), which may change in any release.
 */

// Node: importing the backend switch registers the native backend (its addon loads on first use) as the default
import './backend/index.js';

// The core: tensors, backends, models, checkpoints and safetensors from bytes, preprocessing of
// decoded pixels, training, explanation, embeddings' prototypes, CLIP's tokenizer
export * from './core.js';

// Checkpoints and files
export { loadModel, presetModel, saveCheckpoint, saveHfCheckpoint } from './checkpoint/checkpoint.js';
export { readSafetensors, readSafetensorsHeader, writeSafetensors } from './io/safetensors.js';
export { imagenetLabels, labelsFor } from './io/labels.js';
export { checkConfigAgainstWeights } from './checkpoint/validate.js';

// Images
export { loadImage } from './io/image.js';
export { preprocessImage, preprocessBatch, preprocessForDisplay } from './io/preprocess.js';

// Training
export { saveTrainerState, loadTrainerState } from './train/trainer_file.js';
export { trainRun, type TrainSettings, type RunOptions, type RunResult } from './train/loop.js';
export { openData, type DataSource } from './data/open.js';

// Explanation and embeddings
export { explainImages, explainOne, type ExplainOptions, type Explanation } from './explain/explain.js';
export { explainClipImages, explainClipOne, clipAttentionGradients, textTargets, similarityScoreGrad, type ClipExplanation, type ClipExplainOptions, type ClipTextTarget, type ClipAttentionGradients } from './explain/clip.js';
export { embedFiles, embedPixels, writeEmbeddings } from './embed/embed.js';
export { buildSupport, classifyQueries, type SupportSet, type FewshotResult } from './embed/fewshot.js';

// CLIP: both towers, the open_clip and Hugging Face layouts, zero-shot classification, contrastive training
export { ClipModel, normalizeRows, similarityLogits, softmaxRows, type ClipOutput } from './models/clip/model.js';
export { type ClipConfig, configFromOpenClip, configFromHfClip, LOGIT_SCALE_MAX } from './models/clip/config.js';
export { loadClip, saveClip, clipLayoutOf, type LoadedClip, type ClipLayout } from './clip/load.js';
export { hfKeyMap, openAiToHf, hfToOpenAi, type HfEntry } from './models/clip/names.js';
export { encodeImage, encodeText, zeroShotClassifier, ZeroShotClassifier, DEFAULT_TEMPLATES, type ZeroShotPrediction } from './clip/zeroshot.js';
export { ClipIndex, buildClipIndex, readClipIndex, type SearchHit, type IndexedFile } from './clip/image_index.js';
export { clipLoss, type ClipLossResult } from './train/clip_loss.js';
export { ClipTrainer, openClipExcludeFromDecay, type ClipTrainerOptions, type ClipStepResult } from './train/clip_train.js';
// MAE: facebookresearch/mae's masked autoencoder (and HF ViTMAEForPreTraining), reconstruction, pre-training, fine-tuning
export {
  MaskedAutoencoder, maeSincosPosEmbed, randomMasking, maskingNoise, patchify, unpatchify, normalizePatches, initMae,
  type Masking, type MaeOutput,
} from './mae/model.js';
export { type MaeConfig, MAE_DEFAULTS, MAE_PRESETS, resolveMaeConfig, maeConfigFromHf, hfConfigFromMae, encoderVitConfig, decoderVitConfig, checkMaskRatio } from './mae/config.js';
export { loadMae, saveMae, isMaeDir, readMaeConfig, loadMaeEncoderAsVit, hfNamesOf as maeHfNamesOf, MAE_CONFIG_FILE } from './mae/load.js';
export { runMae, MAE_RUN_OUTPUTS } from './mae/run.js';
export { MaeTrainer, maeTrainRun, openMaeData, readMaeRunState, MAE_AUGMENT, MAE_STATE_FILE, type MaeTrainerOptions, type MaeRunSettings, type MaeRunResult, type MaeData } from './train/mae_run.js';
export { maeAdamWOptions, maeLr, MAE_BASE_LR, MAE_BETAS, MAE_WEIGHT_DECAY } from './train/mae_train.js';
// Text: CLIP's tokenizer from its files
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

// Object detection: YOLOS (hustvl and Hugging Face layouts), DETR's set criterion, COCO evaluation
export { Yolos, yolosVitConfig, initYolos, type YolosConfig, type YolosOutput } from './detect/yolos.js';
export { loadYolos, yolosHfSources, YOLOS_DEFAULT_PREPROCESS, type LoadedYolos, type DetPreprocess } from './detect/load.js';
export { detect, detResizeSize, detResizeSizeHf, detPreprocessImage, padBatch, type Detection, type DetectionResult, type DetectOptions } from './detect/detect.js';
export { setCriterion, hungarianMatch, postProcess, type DetTarget, type Match, type CriterionOptions, type CriterionResult, type PostProcessed } from './detect/criterion.js';
export { linearSumAssignment, type Assignment } from './detect/assign.js';
export { cxcywhToXyxy, xyxyToCxcywh, boxIou, generalizedBoxIou } from './detect/box_ops.js';
export { DetTrainer, yolosDecays, type DetTrainerOptions, type DetStepResult } from './detect/train.js';
export { cocoEvaluate, COCO_STAT_KEYS, type CocoGt, type CocoDetection, type CocoStats } from './detect/coco_eval.js';
export { readCocoFolder, cocoTargets, type CocoFolder } from './detect/coco_data.js';
export { saveYolos, detTrainCli } from './detect/train_cli.js';
export { renderDetections } from './detect/draw.js';
export { detTokenMaps, explainDetToken, type DetTokenMaps, type DetTokenExplanation, type DetTokenExplainOptions } from './detect/explain.js';
