/**
 * A ViT forward composed from DeviceBackend ops alone (no host work between ops), to show the op
 * set is complete for inference: patch embedding (im2col + linear), class token and position
 * embedding (copy + add), pre-norm blocks (LayerNorm, fused qkv linear, attention, projection
 * accumulated into the residual, LayerNorm, fc1 + GELU, fc2 accumulated), final norm and head.
 * Weights come from timm or Hugging Face key names.
 */
import type { DeviceBackend, DeviceTensor } from '../../src/backend/device.js';
import type { SafetensorsFile } from '../../src/io/safetensors.js';

export interface VitDims {
  C: number; img: number; P: number; D: number; NH: number; depth: number; hidden: number; K: number; eps: number;
}

interface BlockW {
  ln1w: DeviceTensor; ln1b: DeviceTensor; qkvW: DeviceTensor; qkvB: DeviceTensor; projW: DeviceTensor; projB: DeviceTensor;
  ln2w: DeviceTensor; ln2b: DeviceTensor; fc1W: DeviceTensor; fc1B: DeviceTensor; fc2W: DeviceTensor; fc2B: DeviceTensor;
}

export interface VitWeights {
  patchW: DeviceTensor; patchB: DeviceTensor; cls: DeviceTensor; pos: DeviceTensor;
  blocks: BlockW[]; normW: DeviceTensor; normB: DeviceTensor; headW: DeviceTensor; headB: DeviceTensor;
}

function up(dev: DeviceBackend, data: Float32Array): DeviceTensor {
  const t = dev.alloc([data.length]);
  dev.write(t, data);
  return t;
}

const cat = (...xs: Float32Array[]) => {
  const out = new Float32Array(xs.reduce((s, x) => s + x.length, 0));
  let o = 0;
  for (const x of xs) { out.set(x, o); o += x.length; }
  return out;
};

/** timm VisionTransformer key names */
export function timmWeights(dev: DeviceBackend, st: SafetensorsFile, depth: number): VitWeights {
  const g = (k: string) => up(dev, st.f32(k).data);
  return {
    patchW: g('patch_embed.proj.weight'), patchB: g('patch_embed.proj.bias'), cls: g('cls_token'), pos: g('pos_embed'),
    blocks: Array.from({ length: depth }, (_, i) => {
      const b = (k: string) => g(`blocks.${i}.${k}`);
      return {
        ln1w: b('norm1.weight'), ln1b: b('norm1.bias'), qkvW: b('attn.qkv.weight'), qkvB: b('attn.qkv.bias'),
        projW: b('attn.proj.weight'), projB: b('attn.proj.bias'), ln2w: b('norm2.weight'), ln2b: b('norm2.bias'),
        fc1W: b('mlp.fc1.weight'), fc1B: b('mlp.fc1.bias'), fc2W: b('mlp.fc2.weight'), fc2B: b('mlp.fc2.bias'),
      };
    }),
    normW: g('norm.weight'), normB: g('norm.bias'), headW: g('head.weight'), headB: g('head.bias'),
  };
}

/** Hugging Face ViTForImageClassification key names; query/key/value packed into timm's fused qkv */
export function hfWeights(dev: DeviceBackend, st: SafetensorsFile, depth: number): VitWeights {
  const f = (k: string) => st.f32(k).data;
  const g = (k: string) => up(dev, f(k));
  return {
    patchW: g('vit.embeddings.patch_embeddings.projection.weight'), patchB: g('vit.embeddings.patch_embeddings.projection.bias'),
    cls: g('vit.embeddings.cls_token'), pos: g('vit.embeddings.position_embeddings'),
    blocks: Array.from({ length: depth }, (_, i) => {
      const p = `vit.encoder.layer.${i}.`;
      const a = `${p}attention.attention.`;
      return {
        ln1w: g(`${p}layernorm_before.weight`), ln1b: g(`${p}layernorm_before.bias`),
        qkvW: up(dev, cat(f(`${a}query.weight`), f(`${a}key.weight`), f(`${a}value.weight`))),
        qkvB: up(dev, cat(f(`${a}query.bias`), f(`${a}key.bias`), f(`${a}value.bias`))),
        projW: g(`${p}attention.output.dense.weight`), projB: g(`${p}attention.output.dense.bias`),
        ln2w: g(`${p}layernorm_after.weight`), ln2b: g(`${p}layernorm_after.bias`),
        fc1W: g(`${p}intermediate.dense.weight`), fc1B: g(`${p}intermediate.dense.bias`),
        fc2W: g(`${p}output.dense.weight`), fc2B: g(`${p}output.dense.bias`),
      };
    }),
    normW: g('vit.layernorm.weight'), normB: g('vit.layernorm.bias'), headW: g('classifier.weight'), headB: g('classifier.bias'),
  };
}

export interface VitOutputs {
  logits: DeviceTensor; // (B, K)
  features: DeviceTensor; // (B, N, D)
  /** the token stream after the embeddings (0) and after each block (i + 1): (B, N, D) each */
  hidden: DeviceTensor[];
  /** attention probabilities of the blocks asked for: (B, NH, N, N) */
  attn: Map<number, DeviceTensor>;
}

/** Enqueues the whole forward of `pixels` (B, C, img, img); reads nothing back. */
export function vitForward(dev: DeviceBackend, w: VitWeights, d: VitDims, B: number, pixels: DeviceTensor,
  opts: { hidden?: boolean; attnBlocks?: number[] } = {}): VitOutputs {
  const { C, img, P, D, NH, depth, hidden: Hd, K, eps } = d;
  const G = img / P, NP = G * G, N = NP + 1, R = B * N, HD = D / NH;
  const cols = dev.alloc([B * NP, C * P * P]); // (B*NP, C*P*P)
  dev.im2colPatches(cols, pixels, B, C, img, img, P);
  const patches = dev.alloc([B * NP, D]); // (B*NP, D)
  dev.linearForward(patches, cols, w.patchW, w.patchB, B * NP, D, C * P * P, false, -1);
  const x = dev.alloc([B, N, D]); // (B, N, D) residual stream
  for (let b = 0; b < B; b++) {
    dev.copy(dev.view(x, b * N * D, [D]), w.cls, D);
    dev.copy(dev.view(x, b * N * D + D, [NP, D]), dev.view(patches, b * NP * D, [NP, D]), NP * D);
    const xb = dev.view(x, b * N * D, [N, D]);
    dev.add(xb, xb, w.pos, N * D);
  }
  const hiddenOut: DeviceTensor[] = [];
  const snap = () => {
    if (!opts.hidden) return;
    const s = dev.alloc([B, N, D]);
    dev.copy(s, x, R * D);
    hiddenOut.push(s);
  };
  snap();
  const h = dev.alloc([R, D]); // (B*N, D)
  const qkv = dev.alloc([R, 3 * D]); // (B*N, 3D)
  const ao = dev.alloc([R, D]); // (B*N, D)
  const m = dev.alloc([R, Hd]); // (B*N, hidden)
  const attn = new Map<number, DeviceTensor>();
  for (let i = 0; i < depth; i++) {
    const bw = w.blocks[i]!;
    dev.layernormForward(h, null, null, x, bw.ln1w, bw.ln1b, R, D, eps);
    dev.linearForward(qkv, h, bw.qkvW, bw.qkvB, R, 3 * D, D, false, -1);
    let probs: DeviceTensor | null = null;
    if (opts.attnBlocks?.includes(i)) {
      probs = dev.alloc([B, NH, N, N]);
      attn.set(i, probs);
    }
    dev.attentionForward(ao, probs, qkv, B, N, NH, HD, 1 / Math.sqrt(HD));
    dev.linearForward(x, ao, bw.projW, bw.projB, R, D, D, true, -1);
    dev.layernormForward(h, null, null, x, bw.ln2w, bw.ln2b, R, D, eps);
    dev.linearForward(m, h, bw.fc1W, bw.fc1B, R, Hd, D, false, 0);
    dev.linearForward(x, m, bw.fc2W, bw.fc2B, R, D, Hd, true, -1);
    snap();
  }
  const features = dev.alloc([B, N, D]);
  dev.layernormForward(features, null, null, x, w.normW, w.normB, R, D, eps);
  const pre = dev.alloc([B, D]); // (B, D) class-token rows
  for (let b = 0; b < B; b++) dev.copy(dev.view(pre, b * D, [D]), dev.view(features, b * N * D, [D]), D);
  const logits = dev.alloc([B, K]);
  dev.linearForward(logits, pre, w.headW, w.headB, B, K, D, false, -1);
  for (const t of [cols, patches, x, h, qkv, ao, m, pre]) dev.release(t);
  return { logits, features, hidden: hiddenOut, attn };
}
