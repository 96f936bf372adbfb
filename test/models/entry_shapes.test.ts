/** The Model's public entry points refuse wrong shapes with one clear VitkitError instead of computing garbage. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VitkitError } from '../../src/errors.js';
import { resolveConfig } from '../../src/models/config.js';
import { VisionTransformer } from '../../src/models/vit.js';
import { Tensor } from '../../src/tensor.js';

function rejects(fn: () => unknown, ...res: RegExp[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof VitkitError, `expected a VitkitError, got ${String(e)}`);
    assert.equal(e.message.split('\n').length, 1);
    for (const re of res) assert.match(e.message, re);
    return true;
  });
}

// DeiT-like: class + distillation token, 2 x 3 grid of patches
const deit = new VisionTransformer(resolveConfig({ img_size: [16, 24], patch_size: 8, in_chans: 3, num_classes: 4, embed_dim: 16, depth: 1, num_heads: 2, distilled: true }));
// DINOv2-like: registers, dynamic size
const dyn = new VisionTransformer(resolveConfig({ img_size: 16, patch_size: 8, in_chans: 3, num_classes: 0, embed_dim: 16, depth: 1, num_heads: 2, reg_tokens: 2, dynamic_img_size: true, no_embed_class: true }));

test('forwardHead: wrong width, wrong rank, no rows, fewer tokens than the prefix are VitkitErrors', () => {
  rejects(() => deit.forwardHead(new Tensor([2, 8, 12])), /Expected features of shape \(B, N, 16\) for forwardHead but received \(2, 8, 12\)/);
  rejects(() => deit.forwardHead(new Tensor([2, 16])), /Expected features of shape \(B, N, 16\)/, /received \(2, 16\)/);
  rejects(() => deit.forwardHead(new Tensor([0, 8, 16])), /B >= 1/, /received \(0, 8, 16\)/);
  // class + dist token: N = 2 has no patch, N = 1 would read the distillation token out of bounds
  rejects(() => deit.forwardHead(new Tensor([1, 1, 16])), /N >= 3/, /received \(1, 1, 16\)/);
  rejects(() => deit.forwardHeads(new Tensor([1, 2, 16])), /N >= 3/);
  rejects(() => dyn.forwardHead(new Tensor([1, 3, 16])), /N >= 4/);
  // the right shapes work
  assert.deepEqual(deit.forwardHead(new Tensor([2, 8, 16])).shape, [2, 4]);
  assert.deepEqual(dyn.forwardHead(new Tensor([2, 7, 16])).shape, [2, 16]);
});

test('forward / forwardFeatures: fixed size must match (non-square), dynamic size must be a multiple of the patch', () => {
  rejects(() => deit.forward(new Tensor([1, 3, 24, 16])), /Input height \(24\) doesn't match model \(16\)/);
  rejects(() => deit.forwardFeatures(new Tensor([1, 3, 16, 16])), /Input width \(16\) doesn't match model \(24\)/);
  rejects(() => deit.forward(new Tensor([1, 1, 16, 24])), /1 channels but the model expects in_chans 3/);
  rejects(() => deit.forward(new Tensor([3, 16, 24])), /Expected pixel_values of shape \(B, 3, 16, 24\) but received \(3, 16, 24\)/);
  rejects(() => deit.forward(new Tensor([0, 3, 16, 24])), /at least one image/);
  rejects(() => dyn.forward(new Tensor([1, 3, 20, 16])), /Input size 20x16 .* must be a positive multiple of patch_size 8/);
  rejects(() => dyn.forwardFeatures(new Tensor([1, 3, 16, 4])), /multiple of patch_size 8/);
  assert.deepEqual(deit.forward(new Tensor([1, 3, 16, 24])).shape, [1, 4]);
  // dynamic: 3 x 5 patches + class + 2 registers
  assert.deepEqual(dyn.forwardFeatures(new Tensor([1, 3, 24, 40])).features.shape, [1, 18, 16]);
});
