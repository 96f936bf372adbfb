/**
 * One error shape for everything a user can get wrong: a one-line message that names the file,
 * tensor, shape or option, with what was expected and what was received. The CLI prints
 * `error: <message>` and exits 1 for these, without a stack trace.
 */
export class VitkitError extends Error {
  override name = 'VitkitError';
}

/** `Expected <what> for <name> but received <value>` in sharp's style. */
export function expected(what: string, name: string, received: unknown): VitkitError {
  return new VitkitError(`Expected ${what} for ${name} but received ${describe(received)}`);
}

export function describe(v: unknown): string {
  if (Array.isArray(v)) return `[${v.join(', ')}]`;
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'object') return Object.prototype.toString.call(v);
  return `${String(v)} of type ${typeof v}`;
}

export function shapeStr(shape: readonly number[]): string {
  return `(${shape.join(', ')})`;
}
