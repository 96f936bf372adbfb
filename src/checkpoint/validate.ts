/**
 * Checks that run before anything is allocated: a resolved config against the tensors a weights
 * file declares (its safetensors header only), and a config's size against sane bounds. A config
 * cannot ask for more than its weights hold: depth must equal the number of blocks in the file,
 * embed_dim / in_chans / patch_size must match the patch embedding, num_classes the classifier,
 * and img_size the position embedding's token count (unless the size is explicitly resampled).
 * Also the finite-value check for weights that are loaded. Everything but reading the header from
 * a file is in validate_core.ts (re-exported here), which the core uses.
 */
import type { ViTConfig } from '../models/config.js';
import { readSafetensorsHeader } from '../io/safetensors.js';
import { checkConfigAgainstEntries, checkCheckpointEntries, type WeightsCheckOptions } from './validate_core.js';

export * from './validate_core.js';

/**
 * Check config `c` (read from `configFile`) against the header of `weightsFile` before the model
 * is allocated. Reads only the header. Throws a VitkitError naming the config field, the tensor,
 * and both values.
 */
export function checkConfigAgainstWeights(c: ViTConfig, weightsFile: string, configFile: string, opts: WeightsCheckOptions = {}): void {
  const { entries } = readSafetensorsHeader(weightsFile);
  checkConfigAgainstEntries(c, entries, weightsFile, configFile, opts);
}

/**
 * The load-path check (checkpoint/checkpoint.ts calls it before building the model): `base` is the config
 * as the checkpoint states it, `final` after the caller's overrides (--img-size, --num-classes).
 * Reads only the weights file's header.
 */
export function checkCheckpointConfig(base: ViTConfig, final: ViTConfig, weightsFile: string, configFile: string, opts: { imgSize?: number; numClasses?: number } = {}): void {
  checkCheckpointEntries(base, final, readSafetensorsHeader(weightsFile).entries, weightsFile, configFile, opts);
}
