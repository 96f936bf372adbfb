/**
 * ONNX export of the Vision Transformer family (opset 17): the graph follows VisionTransformer's
 * op order (src/models/vit.ts, layers.ts) with the config's epsilons; weights are float32
 * initializers (raw_data, little-endian). Input `pixel_values` (B, C, H, W), outputs `logits` and/or
 * `pre_logits`. YOLOS (exportYolosOnnx): the same backbone at one fixed input size, the det tokens
 * after the patches, the position embedding (and mid position embeddings) resampled to that size's
 * grid at export time as the model resamples them, and the two MLP heads: outputs `pred_logits`
 * (B, Q, K + 1) and `pred_boxes` (B, Q, 4, sigmoid cx cy w h). Encoded with protobufjs over ONNX's
 * schema (./onnx_proto.ts).
 */
import { VitkitError } from '../errors.js';
import { dims, imgHW, type ViTConfig } from '../models/config.js';
import type { ParamTable } from '../nn/params.js';
import { prefixParts } from '../models/layers.js';
import { sincos2dPosEmbed } from '../models/pos_embed.js';
import { ATTR, FLOAT, INT64, modelProto } from './onnx_proto.js';
import type { Yolos } from '../detect/yolos.js';

export const OPSET = 17;
/** ONNX IR version 8 (the one onnx pairs with opset 17) */
const IR_VERSION = 8;
/** protobuf messages cannot exceed 2 GiB */
const MAX_BYTES = 2 ** 31 - 1;

export type ExportOutput = 'logits' | 'pre_logits';
export interface ExportOptions {
  /** symbolic batch dimension "batch" (else fixed at `batch`) */
  dynamicBatch?: boolean;
  /** batch size of a fixed-batch export (default 1) */
  batch?: number;
  /** graph outputs, in order (default ['logits'], or ['pre_logits'] without a head) */
  outputs?: ExportOutput[];
  producerVersion?: string;
}

interface Attr { name: string; type: number; f?: number; i?: number; ints?: number[] }
interface Node { op_type: string; input: string[]; output: string[]; name: string; attribute: Attr[] }
interface Init { name: string; dims: number[]; data_type: number; raw_data: Uint8Array }

const ai = (name: string, i: number): Attr => ({ name, type: ATTR.INT, i });
const aints = (name: string, ints: number[]): Attr => ({ name, type: ATTR.INTS, ints });
const af = (name: string, f: number): Attr => ({ name, type: ATTR.FLOAT, f });

/** A graph under construction: nodes in topological order and their initializers. */
class GraphBuilder {
  readonly nodes: Node[] = [];
  readonly inits: Init[] = [];
  private bytes = 0;
  private readonly names = new Set<string>();
  private n = 0;

  /** one node; returns its (first) output name */
  op(op: string, inputs: string[], attrs: Attr[] = [], outName?: string): string {
    const out = outName ?? `${op.toLowerCase()}_${this.n}`;
    this.nodes.push({ op_type: op, input: inputs, output: [out], name: `${op}_${this.n++}`, attribute: attrs });
    return out;
  }

  /** a float32 initializer of shape `shape` */
  f32(name: string, data: Float32Array, shape: number[]): string {
    const raw = new Uint8Array(data.length * 4); // little-endian float32
    const dv = new DataView(raw.buffer);
    for (let i = 0; i < data.length; i++) dv.setFloat32(i * 4, data[i]!, true);
    return this.push(name, raw, shape, FLOAT);
  }

  /** an int64 initializer (1-D, or a scalar when `scalar`) */
  i64(name: string, values: number[], scalar = false): string {
    const raw = new Uint8Array(values.length * 8);
    const dv = new DataView(raw.buffer);
    values.forEach((v, i) => dv.setBigInt64(i * 8, BigInt(v), true));
    return this.push(name, raw, scalar ? [] : [values.length], INT64);
  }

  scalar(name: string, v: number): string {
    return this.f32(name, Float32Array.of(v), []);
  }

  private push(name: string, raw: Uint8Array, shape: number[], type: number): string {
    if (this.names.has(name)) return name; // a shared constant, made once
    this.names.add(name);
    this.bytes += raw.length;
    if (this.bytes > MAX_BYTES - (1 << 24)) {
      throw new VitkitError(`ONNX export of models over 2 GB (the protobuf limit; external data) is not supported: the weights reach ${(this.bytes / 2 ** 30).toFixed(2)} GiB`);
    }
    this.inits.push({ name, dims: shape, data_type: type, raw_data: raw });
    return name;
  }
}

/** W (N, K) of a Linear transposed to (K, N), so that MatMul(x, W^T) is x @ W^T */
function transposed(w: Float32Array, N: number, K: number): Float32Array {
  const t = new Float32Array(N * K); // (K, N)
  for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) t[k * N + n] = w[n * K + k]!;
  return t;
}

/** x (..., K) -> (..., N) = x @ W^T + b for the Linear `pre` of a parameter table */
function linearOp(g: GraphBuilder, params: ParamTable, x: string, pre: string, bias = true): string {
  const [N, Kin] = params.specs.find((s) => s.name === `${pre}.weight`)!.shape as [number, number];
  let y = g.op('MatMul', [x, g.f32(`${pre}.weight_t`, transposed(params.get(`${pre}.weight`), N, Kin), [Kin, N])]);
  if (bias && params.has(`${pre}.bias`)) y = g.op('Add', [y, g.f32(`${pre}.bias`, params.get(`${pre}.bias`), [N])]);
  return y;
}

type Dim = { dim_value: number } | { dim_param: string };

/** What a model other than the plain ViT changes in the graph (YOLOS). */
interface GraphSpec {
  /** the input's height and width (default: the config's image size); the stride-P conv drops a partial patch */
  inputHW?: [number, number];
  /** the learned position table added to [prefix, patches, det] (default: pos_embed) */
  pos?: Float32Array;
  /** after block i: the next value of the tokens (B, N, D) */
  afterBlock?: (g: GraphBuilder, i: number, x: string) => string;
  /** the graph outputs from the final-normed tokens (B, N, D), instead of the classifier's */
  head?: (g: GraphBuilder, x: string, batchDim: Dim) => { name: string; value: string; dims: Dim[] }[];
  /** the graph's name (default vitkit_vit) */
  name?: string;
}

/** Export a VisionTransformer's config and parameters as an ONNX ModelProto (bytes). */
export function exportOnnx(c: ViTConfig, params: ParamTable, opts: ExportOptions = {}): Uint8Array {
  return buildGraph(c, params, opts, {});
}

export interface YolosExportOptions {
  /** the fixed input height and width (default: the checkpoint's position-embedding size) */
  imgSize?: [number, number];
  dynamicBatch?: boolean;
  batch?: number;
  producerVersion?: string;
}

/**
 * Export a YOLOS detector (hustvl/YOLOS, HF YolosForObjectDetection) at one input size: outputs
 * pred_logits (B, Q, K + 1) and pred_boxes (B, Q, 4). Sides that are not multiples of the patch
 * size lose their last partial patch, as in the model.
 */
export function exportYolosOnnx(model: Yolos, opts: YolosExportOptions = {}): Uint8Array {
  const c = model.config.vit, P = c.patch_size, D = c.embed_dim, Q = model.numDetTokens, K1 = model.config.numClasses + 1;
  const [H, W] = opts.imgSize ?? imgHW(c);
  if (!(Number.isInteger(H) && Number.isInteger(W) && H >= P && W >= P)) throw new VitkitError(`Expected the YOLOS export size height,width integers >= the patch size ${P} but received ${H},${W}`);
  const gh = Math.floor(H / P), gw = Math.floor(W / P);
  const layout = model.backbone.layout(gh * P, gw * P);
  const pos = model.backbone.posEmbedFor(layout).pos!; // (1 + gh*gw + Q, D)
  const mid = model.midPosTables(gh, gw);
  const spec: GraphSpec = {
    inputHW: [H, W], pos, name: 'vitkit_yolos',
    head: (g, x, batchDim) => {
      const N = layout.N;
      const det = g.op('Slice', [x, g.i64('det.starts', [N - Q]), g.i64('det.ends', [N]), g.i64('det.axes', [1])]); // (B, Q, D)
      const mlp = (m: string) => {
        const h1 = g.op('Relu', [linearOp(g, model.params, det, `${m}.layers.0`)]);
        const h2 = g.op('Relu', [linearOp(g, model.params, h1, `${m}.layers.1`)]);
        return linearOp(g, model.params, h2, `${m}.layers.2`);
      };
      return [
        { name: 'pred_logits', value: mlp('class_embed'), dims: [batchDim, { dim_value: Q }, { dim_value: K1 }] },
        { name: 'pred_boxes', value: g.op('Sigmoid', [mlp('bbox_embed')]), dims: [batchDim, { dim_value: Q }, { dim_value: 4 }] },
      ];
    },
  };
  if (mid) spec.afterBlock = (g, i, x) => (i < c.depth - 1 ? g.op('Add', [x, g.f32(`mid_pos_embed.${i}`, mid.tables[i]!, [1, mid.rows, D])]) : x);
  const o: ExportOptions = {};
  if (opts.dynamicBatch !== undefined) o.dynamicBatch = opts.dynamicBatch;
  if (opts.batch !== undefined) o.batch = opts.batch;
  if (opts.producerVersion !== undefined) o.producerVersion = opts.producerVersion;
  return buildGraph(c, model.backbone.params, o, spec);
}

/** The ViT graph (patch embedding, tokens, blocks, final norm) with the classifier's outputs or `spec.head`'s. */
function buildGraph(c: ViTConfig, params: ParamTable, opts: ExportOptions, spec: GraphSpec): Uint8Array {
  const P0 = c.patch_size;
  const [imgH, imgW] = spec.inputHW ?? imgHW(c);
  const d = dims(c, Math.floor(imgH / P0), Math.floor(imgW / P0));
  const { D, NH, HD } = d;
  const K = c.num_classes;
  const outputs = opts.outputs ?? [K > 0 ? 'logits' : 'pre_logits'];
  if (!spec.head) {
    if (outputs.length === 0) throw new VitkitError('Expected at least one ONNX output (logits, pre_logits)');
    if (outputs.includes('logits') && K === 0) throw new VitkitError('Output logits needs a head, but the model has num_classes 0; export --outputs pre_logits');
  }
  const g = new GraphBuilder();
  const P = (name: string) => params.get(name);
  const shapeOf = (name: string) => params.specs.find((s) => s.name === name)!.shape;
  const eps = c.layer_norm_eps;
  const ln = (x: string, pre: string) =>
    g.op('LayerNormalization', [x, g.f32(`${pre}.weight`, P(`${pre}.weight`), [D]), g.f32(`${pre}.bias`, P(`${pre}.bias`), [D])], [ai('axis', -1), af('epsilon', eps)]);
  const linear = (x: string, pre: string, bias = true) => linearOp(g, params, x, pre, bias);
  const half = () => g.scalar('const.half', 0.5), one = () => g.scalar('const.one', 1); // made on first use
  const act = (x: string) => {
    if (c.act === 'gelu') { // x * 0.5 * (1 + erf(x / sqrt 2))
      const e = g.op('Erf', [g.op('Mul', [x, g.scalar('const.rsqrt2', Math.SQRT1_2)])]);
      return g.op('Mul', [g.op('Mul', [x, half()]), g.op('Add', [e, one()])]);
    }
    if (c.act === 'gelu_tanh') { // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
      const x3 = g.op('Mul', [g.op('Mul', [x, x]), x]);
      const inner = g.op('Mul', [g.op('Add', [x, g.op('Mul', [x3, g.scalar('const.gelu_c', 0.044715)])]), g.scalar('const.sqrt2pi', Math.sqrt(2 / Math.PI))]);
      return g.op('Mul', [g.op('Mul', [x, half()]), g.op('Add', [g.op('Tanh', [inner]), one()])]);
    }
    const k = c.act === 'quick_gelu' ? 1.702 : 1; // QuickGELU x * sigmoid(1.702 x), SiLU x * sigmoid(x)
    const s = g.op('Sigmoid', [k === 1 ? x : g.op('Mul', [x, g.scalar('const.quick', k)])]);
    return g.op('Mul', [x, s]);
  };
  const sliceLast = (x: string, start: number, end: number, name: string) =>
    g.op('Slice', [x, g.i64(`${name}.starts`, [start]), g.i64(`${name}.ends`, [end]), g.i64(`${name}.axes`, [-1])]);
  const gather = (x: string, index: number, axis: number) => {
    return g.op('Gather', [x, g.i64(`const.idx${index}`, [index], true)], [ai('axis', axis)]);
  };
  const scale = g.scalar('const.attn_scale', 1 / Math.sqrt(HD));

  // patch embedding: Conv (B, C, H, W) -> (B, D, gh, gw) -> (B, NP, D)
  const pw = shapeOf('patch_embed.proj.weight');
  const convIn = ['pixel_values', g.f32('patch_embed.proj.weight', P('patch_embed.proj.weight'), pw)];
  if (params.has('patch_embed.proj.bias')) convIn.push(g.f32('patch_embed.proj.bias', P('patch_embed.proj.bias'), [D]));
  const conv = g.op('Conv', convIn, [aints('kernel_shape', [c.patch_size, c.patch_size]), aints('strides', [c.patch_size, c.patch_size])]);
  let x = g.op('Transpose', [g.op('Reshape', [conv, g.i64('shape.b_d_np', [0, D, -1])])], [aints('perm', [0, 2, 1])]); // (B, NP, D)
  // position embedding on the patches (no_embed_class, sin-cos) before the prefix tokens
  const onPatches = c.pos_embed === 'sincos' || c.no_embed_class;
  const pos = spec.pos ?? (c.pos_embed === 'learn' ? P('pos_embed') : null); // (rows, D)
  if (c.pos_embed === 'sincos') x = g.op('Add', [x, g.f32('pos_embed', sincos2dPosEmbed(d.gridH, d.gridW, D), [1, d.numPatches, D])]);
  else if (pos && onPatches) x = g.op('Add', [x, g.f32('pos_embed', pos, [1, pos.length / D, D])]);
  let batch: string | null = null; // (1,) = [B], made on first use
  /** (1, n, D) tokens broadcast over the batch -> (B, n, D) */
  const expand = (name: string, data: Float32Array, n: number) => {
    batch ??= g.op('Slice', [g.op('Shape', ['pixel_values']), g.i64('const.s0', [0]), g.i64('const.s1', [1])]);
    const shape = g.op('Concat', [batch, g.i64(`shape.${name}_nd`, [n, D])], [ai('axis', 0)]);
    return g.op('Expand', [g.f32(name, data, [1, n, D]), shape]);
  };
  if (d.numPrefix > 0) { // [cls, dist | reg...] (1, numPrefix, D) broadcast over the batch
    const prefix = new Float32Array(d.numPrefix * D); // (numPrefix, D)
    for (const p of prefixParts(c)) prefix.set(P(p.name).subarray(0, p.count * D), p.off * D);
    x = g.op('Concat', [expand('prefix_tokens', prefix, d.numPrefix), x], [ai('axis', 1)]); // (B, numPrefix + NP, D)
  }
  if (d.det > 0) x = g.op('Concat', [x, expand('det_token', P('det_token'), d.det)], [ai('axis', 1)]); // YOLOS: [cls, patches, det] (B, N, D)
  if (pos && !onPatches) {
    if (pos.length !== d.N * D) throw new VitkitError(`The position table has ${pos.length / D} rows but the ${d.gridH}x${d.gridW} grid has ${d.N} tokens`);
    x = g.op('Add', [x, g.f32('pos_embed', pos, [1, d.N, D])]);
  }
  if (c.pre_norm) x = ln(x, 'norm_pre');

  const qkvShape = g.i64('shape.qkv', [0, 0, 3, NH, HD]), mergeShape = g.i64('shape.merge', [0, 0, D]);
  for (let i = 0; i < c.depth; i++) {
    const p = `blocks.${i}.`;
    const qkv = g.op('Transpose', [g.op('Reshape', [linear(ln(x, p + 'norm1'), p + 'attn.qkv'), qkvShape])], [aints('perm', [2, 0, 3, 1, 4])]); // (3, B, NH, N, HD)
    const q = g.op('Mul', [gather(qkv, 0, 0), scale]), k = gather(qkv, 1, 0), v = gather(qkv, 2, 0); // (B, NH, N, HD)
    const probs = g.op('Softmax', [g.op('MatMul', [q, g.op('Transpose', [k], [aints('perm', [0, 1, 3, 2])])])], [ai('axis', -1)]); // (B, NH, N, N)
    const o = g.op('Reshape', [g.op('Transpose', [g.op('MatMul', [probs, v])], [aints('perm', [0, 2, 1, 3])]), mergeShape]); // (B, N, D)
    let y = linear(o, p + 'attn.proj');
    if (c.init_values !== null) y = g.op('Mul', [y, g.f32(p + 'ls1.gamma', P(p + 'ls1.gamma'), [D])]);
    x = g.op('Add', [x, y]);
    let h = linear(ln(x, p + 'norm2'), p + 'mlp.fc1'); // (B, N, H)
    if (c.mlp_layer === 'swiglu_packed') { // SwiGLUPacked: fc1 packs [x1, x2] -> act(x1) * x2
      const Hf = shapeOf(p + 'mlp.fc1.weight')[0]!;
      h = g.op('Mul', [act(sliceLast(h, 0, Hf / 2, `${p}glu.a`)), sliceLast(h, Hf / 2, Hf, `${p}glu.b`)]);
    }
    else h = act(h);
    let z = linear(h, p + 'mlp.fc2');
    if (c.init_values !== null) z = g.op('Mul', [z, g.f32(p + 'ls2.gamma', P(p + 'ls2.gamma'), [D])]);
    x = g.op('Add', [x, z]);
    if (spec.afterBlock) x = spec.afterBlock(g, i, x);
  }
  if (!d.useFcNorm) x = ln(x, 'norm'); // (B, N, D)
  const batchDim: Dim = opts.dynamicBatch ? { dim_param: 'batch' } : { dim_value: opts.batch ?? 1 };
  const classifierOutputs = (): { name: string; value: string; dims: Dim[] }[] => {
    let pre: string, logits: string | null = null;
    if (c.distilled) {
      const cls = gather(x, 0, 1), dist = gather(x, 1, 1); // (B, D)
      pre = g.op('Mul', [g.op('Add', [cls, dist]), half()]);
      if (K > 0) logits = g.op('Mul', [g.op('Add', [linear(cls, 'head'), linear(dist, 'head_dist')]), half()]);
    } else {
      let pooled: string;
      if (c.global_pool === 'token') pooled = gather(x, 0, 1);
      else if (c.global_pool === 'avg') {
        const patches = g.op('Slice', [x, g.i64('pool.starts', [d.numPrefix]), g.i64('pool.ends', [d.N]), g.i64('pool.axes', [1])]);
        pooled = g.op('ReduceMean', [patches], [aints('axes', [1]), ai('keepdims', 0)]);
      } else if (c.global_pool === 'map') { // AttentionPoolLatent, one latent query
        const q1 = g.op('Transpose', [g.op('Reshape', [linear(g.f32('attn_pool.latent', P('attn_pool.latent'), [1, 1, D]), 'attn_pool.q'), g.i64('shape.pool_q', [1, 1, NH, HD])])], [aints('perm', [0, 2, 1, 3])]); // (1, NH, 1, HD)
        const kv = g.op('Transpose', [g.op('Reshape', [linear(x, 'attn_pool.kv'), g.i64('shape.pool_kv', [0, 0, 2, NH, HD])])], [aints('perm', [2, 0, 3, 1, 4])]); // (2, B, NH, N, HD)
        const pk = gather(kv, 0, 0), pv = gather(kv, 1, 0);
        const probs = g.op('Softmax', [g.op('MatMul', [g.op('Mul', [q1, scale]), g.op('Transpose', [pk], [aints('perm', [0, 1, 3, 2])])])], [ai('axis', -1)]); // (B, NH, 1, N)
        const o = g.op('Reshape', [g.op('Transpose', [g.op('MatMul', [probs, pv])], [aints('perm', [0, 2, 1, 3])]), g.i64('shape.pool_o', [-1, D])]); // (B, D)
        const y = linear(o, 'attn_pool.proj');
        pooled = g.op('Add', [y, linear(act(linear(ln(y, 'attn_pool.norm'), 'attn_pool.mlp.fc1')), 'attn_pool.mlp.fc2')]);
      } else pooled = x; // every token goes through the head (B, N, D)
      pre = d.useFcNorm ? ln(pooled, 'fc_norm') : pooled;
      if (K > 0) logits = linear(pre, 'head');
    }

    const rowDims: Dim[] = c.global_pool === '' && !c.distilled ? [batchDim, { dim_value: d.N }] : [batchDim];
    return outputs.map((name) => ({ name, value: name === 'logits' ? logits! : pre, dims: [...rowDims, { dim_value: name === 'logits' ? K : D }] }));
  };
  const outInfo = (spec.head ? spec.head(g, x, batchDim) : classifierOutputs()).map((o) => {
    g.op('Identity', [o.value], [], o.name); // Identity keeps a graph output distinct from an inner value
    return valueInfo(o.name, o.dims);
  });
  const model = {
    ir_version: IR_VERSION,
    opset_import: [{ domain: '', version: OPSET }],
    producer_name: 'vitkit',
    producer_version: opts.producerVersion ?? '',
    graph: {
      name: spec.name ?? 'vitkit_vit',
      node: g.nodes,
      initializer: g.inits,
      input: [valueInfo('pixel_values', [batchDim, { dim_value: c.in_chans }, { dim_value: imgH }, { dim_value: imgW }])],
      output: outInfo,
    },
  };
  const T = modelProto();
  return T.encode(T.fromObject(model)).finish();
}

function valueInfo(name: string, dim: Dim[]) {
  return { name, type: { tensor_type: { elem_type: FLOAT, shape: { dim } } } };
}

/** Decode an ONNX file's header: opset, input and output names and shapes (for checks and `info`). */
export function readOnnxSummary(bytes: Uint8Array): { irVersion: number; opset: number; inputs: { name: string; dims: (number | string)[] }[]; outputs: { name: string; dims: (number | string)[] }[]; ops: string[] } {
  const T = modelProto();
  const m = T.toObject(T.decode(bytes), { longs: Number, defaults: false }) as {
    ir_version: number; opset_import: { domain?: string; version: number }[];
    graph: { node: { op_type: string }[]; input: VI[]; output: VI[] };
  };
  type VI = { name: string; type: { tensor_type: { shape: { dim: { dim_value?: number; dim_param?: string }[] } } } };
  const io = (v: VI) => ({ name: v.name, dims: v.type.tensor_type.shape.dim.map((x) => x.dim_param ?? x.dim_value ?? 0) });
  return {
    irVersion: m.ir_version,
    opset: m.opset_import.find((o) => !o.domain)?.version ?? 0,
    inputs: m.graph.input.map(io), outputs: m.graph.output.map(io),
    ops: [...new Set(m.graph.node.map((n) => n.op_type))].sort(),
  };
}
