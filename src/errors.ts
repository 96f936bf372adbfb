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
  if (Array.isArray(v)) return brief(v);
  if (typeof v === 'string') return brief(v);
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'object') return Object.prototype.toString.call(v);
  return `${String(v)} of type ${typeof v}`;
}

/**
 * A short, bounded rendering of any JSON-like value for messages: strings quoted and cut at 200
 * characters, arrays at 8 elements, nesting below 3 levels as `[...]` / `{...}`. Never recurses
 * deeper than that, so a hostile, deeply nested value cannot overflow the stack.
 */
export function brief(v: unknown, depth = 0): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 200 ? `${v.slice(0, 200)}...` : v);
  if (v === null || v === undefined || typeof v !== 'object') return String(v);
  if (Array.isArray(v)) {
    if (depth >= 3) return '[...]';
    const items = v.slice(0, 8).map((x) => brief(x, depth + 1));
    if (v.length > 8) items.push(`... (${v.length} items)`);
    return `[${items.join(', ')}]`;
  }
  if (depth >= 3) return '{...}';
  const keys = Object.keys(v).slice(0, 4);
  return `{${keys.map((k) => `${JSON.stringify(k)}: ${brief((v as Record<string, unknown>)[k], depth + 1)}`).join(', ')}${Object.keys(v).length > 4 ? ', ...' : ''}}`;
}

/**
 * Malformed command-line values (`--top-k abc`, `--threads 0`): exit code 2 like commander's own
 * usage errors, with the same one-line message style.
 */
export class UsageError extends VitkitError {
  override name = 'UsageError';
}

export function shapeStr(shape: readonly number[]): string {
  // a hostile header can declare 10,000 dimensions: show the first and last four and the count
  if (shape.length > 8) return `(${shape.slice(0, 4).join(', ')}, ..., ${shape.slice(-4).join(', ')}) [${shape.length} dimensions]`;
  return `(${shape.join(', ')})`;
}
