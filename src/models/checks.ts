/** Shape checks at the model's public entry points (core: no file I/O). */
import { VitkitError, shapeStr } from '../errors.js';

/**
 * For the model's forwardHead: features must be (B, N, D) with the model's width D; anything else
 * would be read as garbage. Throws naming the expected and received shapes.
 */
export function checkFeatureShape(shape: readonly number[], D: number, where = 'forwardHead', minTokens = 1): void {
  if (shape.length !== 3 || shape[2] !== D || !(shape[1]! >= 1)) {
    throw new VitkitError(`Expected features of shape (B, N, ${D}) for ${where} but received ${shapeStr(shape)}`);
  }
  if (!(shape[0]! >= 1)) throw new VitkitError(`Expected at least one row (B >= 1) in the features for ${where} but received ${shapeStr(shape)}`);
  if (shape[1]! < minTokens) {
    throw new VitkitError(`Expected features of shape (B, N, ${D}) with N >= ${minTokens} (the model's prefix tokens and at least one patch) for ${where} but received ${shapeStr(shape)}`);
  }
}
