/** Shared by the CLIP tests: where the open_clip reference lives, and the skip rule (CI=true: missing refs fail). */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { REFS } from '../helpers.js';

export const CLIP_DIR = path.join(REFS, 'openclip_clip');
const have = existsSync(path.join(CLIP_DIR, 'ref.safetensors')) && existsSync(path.join(CLIP_DIR, 'train_ref.safetensors'));
export const skipClip: string | false = have || process.env['CI'] === 'true' ? false : 'needs ../shared/refs/openclip_clip';
