/** Shared CLI helpers: option parsing with clear errors, output-file safety. */
import { existsSync } from 'node:fs';
import { VitkitError, expected } from '../errors.js';

export function parseIntOpt(name: string, min = 1) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw expected(`an integer >= ${min}`, name, v);
    return n;
  };
}

export function parseFloatOpt(name: string, min = -Infinity, max = Infinity) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw expected(`a number in [${min}, ${max}]`, name, v);
    return n;
  };
}

/** Refuse to replace a user's file unless --overwrite was given. */
export function checkOutput(file: string, overwrite: boolean | undefined): void {
  if (existsSync(file) && !overwrite) throw new VitkitError(`Output ${file} already exists; pass --overwrite to replace it`);
}

export function fmtNum(n: number, digits = 2): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
