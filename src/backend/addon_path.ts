/**
 * Where the native addon's .node file is, by node-gyp-build's rules (the same that its install step
 * used to decide whether to compile): build/Release (a source build), build/Debug, then
 * prebuilds/<platform>-<arch>/ (the binaries shipped in the package, matched on N-API and libc).
 * VITKIT_PREBUILD=<dir> looks in another package root.
 */
import { createRequire } from 'node:module';
import { VitkitError } from '../errors.js';

export function addonPath(root: string): string {
  const require = createRequire(import.meta.url);
  let gypBuild: { path(dir: string): string };
  try {
    gypBuild = require('node-gyp-build') as typeof gypBuild;
  } catch {
    throw new VitkitError('The npm package "node-gyp-build" is missing (a dependency of vitkit); run `npm install` in your project');
  }
  try {
    return gypBuild.path(root);
  } catch (e) {
    const target = /No native build was found for (.*)/.exec((e as Error).message)?.[1]?.trim() ?? `${process.platform}-${process.arch}`;
    throw new VitkitError(
      `No native addon for this machine in ${root} (no build/Release/vitkit.node and no prebuilt binary for ${target}). ` +
      'Build it with `npm rebuild vitkit` (or `npm run build:native` in the vitkit folder); it needs python3, make and a C++17 compiler.');
  }
}
