/**
 * vitkit's internals: the engine below the public surface, for vitkit's own tools (lab/, bench/,
 * tests) and for experiments that need it. Exported as `vitkit/internal`, outside the public
 * contract: any release may change or remove these names. A program that needs only models,
 * loaders, runners, trainers, preprocessing, the tokenizer or the Hub imports `vitkit`.
 * Like the core it runs without Node (test/core/core_imports.test.ts walks its import graph);
 * test/core/internal_names.txt is the reviewed list of its names, none of them in the public entries.
 */

// The op list every model and layer is written against, and the devices behind it
export { OP_NAMES, type Ops, type ThreadControl } from './backend/ops.js';
export type { DeviceBackend, DeviceTensor, DeviceDType } from './backend/device.js';
export { HostDevice } from './backend/host_device.js';
export { hostMem, type Mem, type Params } from './nn/mem.js';

// Derived sizes and the token layout (one owner: the config)
export { dims, tokenLayout, type TokenLayout } from './models/config.js';

// The model core on any device, its parameter specs, caches and backward
export {
  VitCore, vitParamSpecs, emptyCache, checkPixelShape,
  type VitRuntime, type CoreBackwardOptions, type ForwardCache, type BlockCache,
} from './models/vit.js';
export { DeviceViT, DeviceParamTable, DeviceArena, type DeviceFeatures } from './models/device.js';
export { vitBackward, type BackwardOptions } from './train/backward.js';

// The other families' parameter specs, caches and layer initialisers
export type { ClipCache } from './models/clip/model.js';
export { maeParamSpecs, type MaeCache } from './mae/model.js';
export { yolosParamSpecs, emptyYolosCache, initLinear, type YolosCache } from './detect/yolos.js';
