/**
 * The Model interface every consumer uses (trainer, explain, embed, evaluation, the CLI), and the
 * family registry: config -> model. A family is an architecture with its own parameter table,
 * init and compute; its checkpoint key maps live with the checkpoint layouts (src/io, per family).
 */
import type { Backend } from '../backend/backend.js';
import type { Tensor } from '../tensor.js';
import type { ParamTable, ParamSpec } from '../nn/params.js';
import { VitkitError } from '../errors.js';
import type { TokenLayout, ViTConfig } from './config.js';
import type { ForwardCache, ForwardOptions, FeaturesOutput, HeadsOutput, BackwardOptions } from './vit.js';

export interface Model {
  /** registry name of the architecture family */
  readonly family: string;
  readonly config: ViTConfig;
  /** every parameter, in checkpoint (timm state_dict) order and names */
  readonly params: ParamTable;
  backend: Backend;
  readonly numParams: number;
  /** class, distillation and register tokens before the patch tokens */
  readonly numPrefixTokens: number;
  /** token layout for an H x W input (default: the configured size) */
  layout(H?: number, W?: number): TokenLayout;
  /** (B, C, H, W) -> features (B, N, D); hidden states and attentions on request; a cache for backward */
  forwardFeatures(x: Tensor, opts?: ForwardOptions): FeaturesOutput;
  /** features -> logits (B, K), or pre-logits (B, D) with preLogits or without a head */
  forwardHead(features: Tensor, opts?: { preLogits?: boolean; cache?: ForwardCache }): Tensor;
  /** features -> pre-logits, logits and each head's logits (DeiT) */
  forwardHeads(features: Tensor, opts?: { preLogits?: boolean; cache?: ForwardCache }): HeadsOutput;
  /** (B, C, H, W) -> logits */
  forward(x: Tensor, opts?: ForwardOptions): Tensor;
  /** every block's output tokens (B, N, D), or those at `indices`, and the features */
  forwardIntermediates(x: Tensor, opts?: { indices?: number[] }): { features: Tensor; intermediates: Tensor[] };
  /** accumulate dL/dparams into grads from the forward's cache and dL/dlogits */
  backward(cache: ForwardCache, dlogits: Float32Array, grads: ParamTable, opts?: BackwardOptions): void;
}

export interface ModelFamily {
  name: string;
  /** the parameter table of a config (names and shapes in checkpoint order) */
  paramSpecs(config: ViTConfig): ParamSpec[];
  /** a model over `params` (a fresh zeroed table when absent) */
  create(config: ViTConfig, params?: ParamTable, backend?: Backend): Model;
  /** seeded default initialization */
  init(model: Model, seed: number): void;
  /** multiply-accumulates per image at the configured size */
  macs(config: ViTConfig): number;
}

const FAMILIES = new Map<string, ModelFamily>();

export function registerFamily(f: ModelFamily): void {
  FAMILIES.set(f.name, f);
}

export function getFamily(name: string): ModelFamily {
  const f = FAMILIES.get(name);
  if (!f) throw new VitkitError(`Unknown model family ${JSON.stringify(name)}; known families: ${[...FAMILIES.keys()].join(', ')}`);
  return f;
}

export function familyNames(): string[] {
  return [...FAMILIES.keys()];
}
