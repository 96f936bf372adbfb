/**
 * All parameters of a model live in one Float32Array with a table of named views (llm.c's
 * layout): the optimizer, the gradient buffer and checkpoint I/O walk the same table.
 */
import { numel } from '../tensor.js';
import { VitkitError, shapeStr } from '../errors.js';

export interface ParamSpec {
  name: string;
  shape: number[];
}

export class ParamTable {
  readonly specs: readonly ParamSpec[];
  /** every parameter back to back, in `specs` order */
  readonly buffer: Float32Array;
  private readonly views = new Map<string, Float32Array>();
  private readonly shapes = new Map<string, number[]>();

  constructor(specs: readonly ParamSpec[], buffer?: Float32Array) {
    this.specs = specs;
    const total = specs.reduce((s, p) => s + numel(p.shape), 0);
    this.buffer = buffer ?? new Float32Array(total);
    if (this.buffer.length !== total) throw new Error(`ParamTable buffer has ${this.buffer.length} values, needs ${total}`);
    let off = 0;
    for (const p of specs) {
      const n = numel(p.shape);
      this.views.set(p.name, this.buffer.subarray(off, off + n));
      this.shapes.set(p.name, p.shape);
      off += n;
    }
  }

  get(name: string): Float32Array {
    const v = this.views.get(name);
    if (!v) throw new Error(`no parameter named ${name}`);
    return v;
  }

  has(name: string): boolean {
    return this.views.has(name);
  }

  shape(name: string): number[] {
    const s = this.shapes.get(name);
    if (!s) throw new Error(`no parameter named ${name}`);
    return s;
  }

  names(): string[] {
    return this.specs.map((s) => s.name);
  }

  get count(): number {
    return this.buffer.length;
  }

  /** a zeroed table with the same layout (for gradients and optimizer moments) */
  like(): ParamTable {
    return new ParamTable(this.specs);
  }

  /** copy `data` into parameter `name`, checking the shape */
  set(name: string, shape: readonly number[], data: Float32Array, where = 'checkpoint'): void {
    const want = this.shape(name);
    if (want.length !== shape.length || want.some((d, i) => d !== shape[i])) {
      throw new VitkitError(`Wrong shape for tensor ${name} in ${where}: expected ${shapeStr(want)} but received ${shapeStr(shape)}`);
    }
    this.get(name).set(data);
  }
}
