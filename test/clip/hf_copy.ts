/** A Hugging Face CLIPModel directory the tests convert from the open_clip reference by the documented key map (src/models/clip/names.ts hfKeyMap). */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { tmp } from '../helpers.js';
import { writeSafetensors, type StTensorIn } from '../../src/io/safetensors.js';
import { loadClip, openAiTensors } from '../../src/clip/load.js';
import { hfKeyMap, openAiToHf } from '../../src/models/clip/names.js';
import { CLIP_DIR } from './common.js';

/** A Hugging Face CLIPModel directory converted from the open_clip reference by hfKeyMap (plus HF's position_ids buffers). */
export function writeHfCopy(eosTokenId: number): string {
  const { model } = loadClip(CLIP_DIR);
  const hf = openAiToHf(openAiTensors(model), hfKeyMap(3, 3));
  const dir = tmp();
  const tensors: Record<string, StTensorIn> = {};
  for (const [k, t] of hf) tensors[k] = { shape: t.shape, data: t.data };
  tensors['text_model.embeddings.position_ids'] = { shape: [1, 77], data: BigInt64Array.from({ length: 77 }, (_, i) => BigInt(i)) };
  tensors['vision_model.embeddings.position_ids'] = { shape: [1, 17], data: BigInt64Array.from({ length: 17 }, (_, i) => BigInt(i)) };
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({
    architectures: ['CLIPModel'], model_type: 'clip', projection_dim: 64, logit_scale_init_value: 2.6592,
    text_config: { hidden_size: 64, intermediate_size: 256, num_hidden_layers: 3, num_attention_heads: 4, max_position_embeddings: 77, vocab_size: 49408, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5, eos_token_id: eosTokenId },
    vision_config: { hidden_size: 96, intermediate_size: 384, num_hidden_layers: 3, num_attention_heads: 3, image_size: 64, patch_size: 16, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5 },
  }));
  return dir;
}

