/** A dense row-major float32 tensor: a shape and a Float32Array of exactly prod(shape) values. */
export class Tensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;

  constructor(shape: readonly number[], data?: Float32Array) {
    const n = numel(shape);
    if (data && data.length !== n) {
      throw new Error(`Tensor data has ${data.length} elements but shape (${shape.join(', ')}) needs ${n}`);
    }
    this.shape = [...shape];
    this.data = data ?? new Float32Array(n);
  }

  get size(): number {
    return this.data.length;
  }

  /** A view with another shape over the same data. */
  reshape(shape: readonly number[]): Tensor {
    return new Tensor(shape, this.data);
  }

  clone(): Tensor {
    return new Tensor(this.shape, this.data.slice());
  }

  static zeros(shape: readonly number[]): Tensor {
    return new Tensor(shape);
  }
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}
