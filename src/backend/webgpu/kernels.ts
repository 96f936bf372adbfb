/**
 * WGSL compute kernels for every op of the device op list, fp32 throughout.
 *
 * A kernel is declared by its storage arguments (in the order the op passes them), its uniform
 * parameters and its code. `buildShader` writes the declarations: one uniform struct `p` holding
 * the parameters plus an element offset `o_<ARG>` for every storage argument (views of a buffer
 * are bound from a 256-byte aligned start, and the rest of their offset travels here, so no
 * binding offset has to meet minStorageBufferOffsetAlignment), and one storage binding per
 * distinct buffer: when two arguments are views of one GPUBuffer they share a binding (WebGPU
 * rejects aliased writable bindings), which `buildShader` does by renaming the arguments in the
 * code. Argument names are upper case and appear in code only as whole words.
 *
 * Large 1-D grids are folded into 2-D (at most 65535 workgroups per dimension): kernels compute
 * their linear workgroup index as wid.y * nwg.x + wid.x.
 */

export interface ArgDef {
  name: string;
  /** written by the kernel (bound read_write) */
  write?: boolean;
  /** i32 elements (class labels) instead of f32 */
  int?: boolean;
}

export interface KernelDef {
  name: string;
  args: readonly ArgDef[];
  /** uniform fields as `name: u32` / `name: i32` / `name: f32` (4 bytes each) */
  params: readonly string[];
  /** module-scope WGSL: workgroup variables, helpers and the `main` entry point */
  code: string;
}

/** The uniform layout of a kernel: the offsets first, then the parameters, 4 bytes each. */
export function uniformFields(k: KernelDef): { name: string; type: 'u32' | 'i32' | 'f32' }[] {
  const fields: { name: string; type: 'u32' | 'i32' | 'f32' }[] = k.args.map((a) => ({ name: `o_${a.name}`, type: 'u32' as const }));
  for (const p of k.params) {
    const [name, type] = p.split(':').map((s) => s.trim()) as [string, 'u32' | 'i32' | 'f32'];
    fields.push({ name, type });
  }
  return fields;
}

/**
 * WGSL source for kernel `k` where argument i is bound at binding `slot[i]` (1-based; 0 is the
 * uniform). Arguments sharing a slot share one declaration, read_write if any of them writes.
 */
export function buildShader(k: KernelDef, slot: readonly number[]): string {
  const fields = uniformFields(k);
  let src = `struct Params {\n${fields.map((f) => `  ${f.name}: ${f.type},`).join('\n')}\n};\n`;
  src += '@group(0) @binding(0) var<uniform> p: Params;\n';
  const decls = new Map<number, { write: boolean; int: boolean }>();
  k.args.forEach((a, i) => {
    const s = slot[i]!;
    const d = decls.get(s);
    decls.set(s, { write: (d?.write ?? false) || !!a.write, int: !!a.int });
  });
  for (const [s, d] of decls) {
    src += `@group(0) @binding(${s}) var<storage, ${d.write ? 'read_write' : 'read'}> buf${s}: array<${d.int ? 'i32' : 'f32'}>;\n`;
  }
  let code = k.code;
  k.args.forEach((a, i) => { code = code.replace(new RegExp(`\\b${a.name}\\b`, 'g'), `buf${slot[i]}`); });
  return src + COMMON + code;
}

/** helpers shared by every kernel */
const COMMON = /* wgsl */ `
const SQRT1_2: f32 = 0.7071067811865476;
const INV_SQRT_2PI: f32 = 0.3989422804014327;
const SQRT_2_OVER_PI: f32 = 0.7978845608028654;
const TANH_C: f32 = 0.044715;
var<private> NAN_BITS: u32 = 0x7fc00000u;
var<private> NEG_INF_BITS: u32 = 0xff800000u;
fn nan_f32() -> f32 { return bitcast<f32>(NAN_BITS); }
fn neg_inf() -> f32 { return bitcast<f32>(NEG_INF_BITS); }
fn is_nan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
/** max that propagates NaN (WGSL's max need not) */
fn nmax(a: f32, b: f32) -> f32 {
  if (is_nan(a) || is_nan(b)) { return nan_f32(); }
  return max(a, b);
}
fn wg_index(wid: vec3u, nwg: vec3u) -> u32 { return wid.y * nwg.x + wid.x; }
/** a softmax whose max is NaN or infinite is NaN throughout (as exp(inf - inf) makes it in IEEE arithmetic) */
fn bad_max(m: f32) -> bool { return (bitcast<u32>(m) & 0x7fffffffu) >= 0x7f800000u; }

/**
 * exp(a) to about 1 ulp (a plain exp may be 3-4 ulp; WGSL allows more): exp(a) = 2^n exp(r) with
 * r = a - n ln 2 (ln 2 in two parts, Cody-Waite), |r| <= 0.35, and exp(r) by its Taylor series to
 * r^8 (truncation < 3e-10). Used where GELU's tail needs relative accuracy.
 */
fn exp_acc(a: f32) -> f32 {
  if (a < -104.0) { return 0.0; }
  let n = round(a * 1.4426950408889634);
  let r = (a - n * 0.693145751953125) - n * 1.428606765330187e-6;
  let e = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 +
    r * (1.0 / 5040.0 + r * (1.0 / 40320.0))))))));
  return ldexp(e, i32(n));
}
/**
 * erfc(z) for z >= 0 with relative error < 1.2e-7 (Numerical Recipes' Chebyshev fit), given
 * z^2 = hi + lo with hi exact (so that exp(-z^2) is not spoiled by the rounding of z^2: the
 * relative error of erfc is about 2 z^2 times that of its argument).
 */
fn erfc_parts(z: f32, hi: f32, lo: f32) -> f32 {
  let d = 1.0 + 0.5 * z;
  var t = 1.0 / d;
  t = t * (2.0 - d * t); // one Newton step: a correctly rounded reciprocal is not guaranteed
  return t * exp_acc(-hi) * exp_acc(-lo - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
    t * (-0.82215223 + t * 0.17087277)))))))));
}
/** u^2 = hi + lo, hi = uh^2 exact for uh = u with its low 12 mantissa bits cleared */
fn square_split(u: f32) -> vec2f {
  let uh = bitcast<f32>(bitcast<u32>(u) & 0xfffff000u);
  return vec2f(uh * uh, (uh + u) * (u - uh));
}
fn erfc_pos(z: f32) -> f32 {
  if (z > 10.0) { return 0.0; } // erfc(10) = 2e-45: float32 zero (and no inf - inf below)
  let s = square_split(z);
  return erfc_parts(z, s.x, s.y);
}
/** Phi(x) = erfc(-x / sqrt 2) / 2 for x < 0, with (x / sqrt 2)^2 = x^2 / 2 split from x itself */
fn phi_neg(x: f32) -> f32 {
  if (x < -14.5) { return 0.0; } // Phi(-14.5) = 6e-48
  let s = square_split(-x) * 0.5;
  return 0.5 * erfc_parts(-x * SQRT1_2, s.x, s.y);
}
/**
 * erf(x): the Maclaurin series for |x| < 0.75 (13 terms, truncation < 1e-11), so small arguments
 * keep their relative accuracy; 1 - erfc(|x|) above (erfc < 0.29 there, so its error shrinks).
 */
fn erf_f32(x: f32) -> f32 {
  if (is_nan(x)) { return x; }
  let z = abs(x);
  if (z < 0.75) {
    let x2 = x * x;
    // 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1)), n = 0..12, Horner in x^2
    var s = 1.0 / 11975040000.0;
    s = s * x2 - 1.0 / 918086400.0;
    s = s * x2 + 1.0 / 76204800.0;
    s = s * x2 - 1.0 / 6894720.0;
    s = s * x2 + 1.0 / 685440.0;
    s = s * x2 - 1.0 / 75600.0;
    s = s * x2 + 1.0 / 9360.0;
    s = s * x2 - 1.0 / 1320.0;
    s = s * x2 + 1.0 / 216.0;
    s = s * x2 - 1.0 / 42.0;
    s = s * x2 + 1.0 / 10.0;
    s = s * x2 - 1.0 / 3.0;
    s = s * x2 + 1.0;
    return 1.1283791670955126 * x * s;
  }
  let r = 1.0 - erfc_pos(z);
  return select(r, -r, x < 0.0);
}
/** tanh without overflow for large |x| */
fn tanh_safe(x: f32) -> f32 {
  let t = exp(-2.0 * abs(x));
  let r = (1.0 - t) / (1.0 + t);
  return select(r, -r, x < 0.0);
}
fn gelu(x: f32, approx: i32) -> f32 {
  if (approx == 0) {
    // for x < 0, 1 + erf(x / sqrt 2) = erfc(|x| / sqrt 2), computed directly (no cancellation)
    if (x < 0.0) { return x * phi_neg(x); }
    return 0.5 * x * (1.0 + erf_f32(x * SQRT1_2));
  }
  return 0.5 * x * (1.0 + tanh_safe(SQRT_2_OVER_PI * (x + TANH_C * x * x * x)));
}
fn gelu_grad(x: f32, approx: i32) -> f32 {
  if (approx == 0) {
    var cdf: f32;
    if (x < 0.0) { cdf = phi_neg(x); } else { cdf = 0.5 * (1.0 + erf_f32(x * SQRT1_2)); }
    return cdf + x * exp(-0.5 * x * x) * INV_SQRT_2PI;
  }
  let t = tanh_safe(SQRT_2_OVER_PI * (x + TANH_C * x * x * x));
  return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * TANH_C * x * x);
}
/** sigmoid(a x), exp only of a non-positive argument (no overflow) */
fn sigmoid_ax(x: f32, a: f32) -> f32 {
  let z = a * x;
  if (z >= 0.0) { return 1.0 / (1.0 + exp_acc(-z)); }
  let e = exp_acc(z);
  return e / (1.0 + e);
}
fn act_alpha(kind: i32) -> f32 { return select(1.0, 1.702, kind == 2); }
/** activation kind 0 GELU erf, 1 GELU tanh, 2 QuickGELU x sigmoid(1.702 x), 3 SiLU x sigmoid(x) */
fn act(x: f32, kind: i32) -> f32 {
  if (kind <= 1) { return gelu(x, kind); }
  if (is_nan(x)) { return x; }
  return x * sigmoid_ax(x, act_alpha(kind));
}
fn act_grad(x: f32, kind: i32) -> f32 {
  if (kind <= 1) { return gelu_grad(x, kind); }
  if (is_nan(x)) { return x; }
  let a = act_alpha(kind);
  let s = sigmoid_ax(x, a);
  return s + a * x * s * (1.0 - s);
}
`;

/** workgroup reductions over 128 threads (row kernels) */
const REDUCE128 = /* wgsl */ `
var<workgroup> red: array<f32, 128>;
fn wg_sum(v: f32, l: u32) -> f32 {
  red[l] = v;
  workgroupBarrier();
  for (var s = 64u; s > 0u; s = s >> 1u) {
    if (l < s) { red[l] = red[l] + red[l + s]; }
    workgroupBarrier();
  }
  let r = workgroupUniformLoad(&red[0]);
  workgroupBarrier();
  return r;
}
fn wg_max(v: f32, l: u32) -> f32 {
  red[l] = v;
  workgroupBarrier();
  for (var s = 64u; s > 0u; s = s >> 1u) {
    if (l < s) { red[l] = nmax(red[l], red[l + s]); }
    workgroupBarrier();
  }
  let r = workgroupUniformLoad(&red[0]);
  workgroupBarrier();
  return r;
}
`;

/** 64x64 output tiles, 16-deep K slices, 256 threads computing 4x4 each */
export const GEMM: KernelDef = {
  name: 'gemm',
  args: [{ name: 'A' }, { name: 'B' }, { name: 'C', write: true }, { name: 'BIAS' }],
  params: ['M: u32', 'N: u32', 'K: u32', 'lda: u32', 'ldb: u32', 'ldc: u32', 'transA: u32', 'transB: u32',
    'alpha: f32', 'beta: f32', 'hasBias: u32', 'act: i32'],
  code: /* wgsl */ `
var<workgroup> As: array<f32, 1024>; // (16, 64): As[k * 64 + m]
var<workgroup> Bs: array<f32, 1024>; // (16, 64): Bs[k * 64 + n]
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row0 = wid.y * 64u;
  let col0 = wid.x * 64u;
  let tid = lid.y * 16u + lid.x;
  var acc: array<f32, 16>;
  for (var k0 = 0u; k0 < p.K; k0 = k0 + 16u) {
    for (var r = 0u; r < 4u; r = r + 1u) {
      let e = tid + r * 256u;
      var m: u32; var k: u32;
      if (p.transA == 0u) { m = e / 16u; k = e % 16u; } else { k = e / 64u; m = e % 64u; }
      let gm = row0 + m;
      let gk = k0 + k;
      var v = 0.0;
      if (gm < p.M && gk < p.K) {
        if (p.transA == 0u) { v = A[p.o_A + gm * p.lda + gk]; } else { v = A[p.o_A + gk * p.lda + gm]; }
      }
      As[k * 64u + m] = v;
    }
    for (var r = 0u; r < 4u; r = r + 1u) {
      let e = tid + r * 256u;
      var n: u32; var k: u32;
      if (p.transB == 0u) { k = e / 64u; n = e % 64u; } else { n = e / 16u; k = e % 16u; }
      let gn = col0 + n;
      let gk = k0 + k;
      var v = 0.0;
      if (gn < p.N && gk < p.K) {
        if (p.transB == 0u) { v = B[p.o_B + gk * p.ldb + gn]; } else { v = B[p.o_B + gn * p.ldb + gk]; }
      }
      Bs[k * 64u + n] = v;
    }
    workgroupBarrier();
    for (var k = 0u; k < 16u; k = k + 1u) {
      var a: array<f32, 4>;
      var b: array<f32, 4>;
      for (var i = 0u; i < 4u; i = i + 1u) { a[i] = As[k * 64u + lid.y + i * 16u]; }
      for (var j = 0u; j < 4u; j = j + 1u) { b[j] = Bs[k * 64u + lid.x + j * 16u]; }
      for (var i = 0u; i < 4u; i = i + 1u) {
        for (var j = 0u; j < 4u; j = j + 1u) { acc[i * 4u + j] = fma(a[i], b[j], acc[i * 4u + j]); }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i = i + 1u) {
    let gm = row0 + lid.y + i * 16u;
    if (gm >= p.M) { continue; }
    for (var j = 0u; j < 4u; j = j + 1u) {
      let gn = col0 + lid.x + j * 16u;
      if (gn >= p.N) { continue; }
      let c = p.o_C + gm * p.ldc + gn;
      var v = p.alpha * acc[i * 4u + j];
      if (p.beta != 0.0) { v = v + p.beta * C[c]; }
      if (p.hasBias != 0u) { v = v + BIAS[p.o_BIAS + gn]; }
      if (p.act >= 0) { v = gelu(v, p.act); }
      C[c] = v;
    }
  }
}
`,
};

/** one workgroup of 128 per row: two-pass mean and variance */
export const LN_FWD: KernelDef = {
  name: 'layernorm_fwd',
  args: [{ name: 'OUT', write: true }, { name: 'MEAN', write: true }, { name: 'RSTD', write: true },
    { name: 'INP' }, { name: 'W' }, { name: 'BI' }],
  params: ['R: u32', 'C: u32', 'eps: f32', 'saveStats: u32'],
  code: REDUCE128 + /* wgsl */ `
@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let r = wg_index(wid, nwg);
  if (r >= p.R) { return; }
  let l = lid.x;
  let base = p.o_INP + r * p.C;
  var s = 0.0;
  for (var c = l; c < p.C; c = c + 128u) { s = s + INP[base + c]; }
  let m = wg_sum(s, l) / f32(p.C);
  var v = 0.0;
  for (var c = l; c < p.C; c = c + 128u) { let d = INP[base + c] - m; v = v + d * d; }
  let rs = 1.0 / sqrt(wg_sum(v, l) / f32(p.C) + p.eps);
  for (var c = l; c < p.C; c = c + 128u) {
    OUT[p.o_OUT + r * p.C + c] = (INP[base + c] - m) * rs * W[p.o_W + c] + BI[p.o_BI + c];
  }
  if (l == 0u && p.saveStats != 0u) {
    MEAN[p.o_MEAN + r] = m;
    RSTD[p.o_RSTD + r] = rs;
  }
}
`,
};

/** dinp (R, C) += per row */
export const LN_BWD_ROWS: KernelDef = {
  name: 'layernorm_bwd_rows',
  args: [{ name: 'DINP', write: true }, { name: 'DOUT' }, { name: 'INP' }, { name: 'W' }, { name: 'MEAN' }, { name: 'RSTD' }],
  params: ['R: u32', 'C: u32'],
  code: REDUCE128 + /* wgsl */ `
@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let r = wg_index(wid, nwg);
  if (r >= p.R) { return; }
  let l = lid.x;
  let m = MEAN[p.o_MEAN + r];
  let rs = RSTD[p.o_RSTD + r];
  var sg = 0.0;
  var sgx = 0.0;
  for (var c = l; c < p.C; c = c + 128u) {
    let xh = (INP[p.o_INP + r * p.C + c] - m) * rs;
    let gw = DOUT[p.o_DOUT + r * p.C + c] * W[p.o_W + c];
    sg = sg + gw;
    sgx = sgx + gw * xh;
  }
  let a = wg_sum(sg, l) / f32(p.C);
  let b = wg_sum(sgx, l) / f32(p.C);
  for (var c = l; c < p.C; c = c + 128u) {
    let i = r * p.C + c;
    let xh = (INP[p.o_INP + i] - m) * rs;
    DINP[p.o_DINP + i] = DINP[p.o_DINP + i] + (DOUT[p.o_DOUT + i] * W[p.o_W + c] - a - xh * b) * rs;
  }
}
`,
};

/** column reductions: a workgroup of (16 columns, 16 row lanes) per 16 columns */
const COLSUM = /* wgsl */ `
var<workgroup> cs: array<f32, 256>;
var<workgroup> cs2: array<f32, 256>;
fn col_reduce(l: u32) {
  for (var s = 8u; s > 0u; s = s >> 1u) {
    workgroupBarrier();
    if ((l >> 4u) < s) { cs[l] = cs[l] + cs[l + s * 16u]; cs2[l] = cs2[l] + cs2[l + s * 16u]; }
  }
  workgroupBarrier();
}
`;

/** dweight (C) += sum_r dout * xhat, dbias (C) += sum_r dout */
export const LN_BWD_COLS: KernelDef = {
  name: 'layernorm_bwd_cols',
  args: [{ name: 'DW', write: true }, { name: 'DB', write: true }, { name: 'DOUT' }, { name: 'INP' }, { name: 'MEAN' }, { name: 'RSTD' }],
  params: ['R: u32', 'C: u32'],
  code: COLSUM + /* wgsl */ `
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let c = wid.x * 16u + lid.x;
  let l = lid.y * 16u + lid.x;
  var sw = 0.0;
  var sb = 0.0;
  if (c < p.C) {
    for (var r = lid.y; r < p.R; r = r + 16u) {
      let i = r * p.C + c;
      let g = DOUT[p.o_DOUT + i];
      sw = sw + g * (INP[p.o_INP + i] - MEAN[p.o_MEAN + r]) * RSTD[p.o_RSTD + r];
      sb = sb + g;
    }
  }
  cs[l] = sw;
  cs2[l] = sb;
  col_reduce(l);
  if (lid.y == 0u && c < p.C) {
    DW[p.o_DW + c] = DW[p.o_DW + c] + cs[lid.x];
    DB[p.o_DB + c] = DB[p.o_DB + c] + cs2[lid.x];
  }
}
`,
};

/** dbias (C) += column sums of dout (R, C) */
export const BIAS_BWD: KernelDef = {
  name: 'bias_bwd',
  args: [{ name: 'DB', write: true }, { name: 'DOUT' }],
  params: ['R: u32', 'C: u32'],
  code: COLSUM + /* wgsl */ `
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let c = wid.x * 16u + lid.x;
  let l = lid.y * 16u + lid.x;
  var sb = 0.0;
  if (c < p.C) {
    for (var r = lid.y; r < p.R; r = r + 16u) { sb = sb + DOUT[p.o_DOUT + r * p.C + c]; }
  }
  cs[l] = sb;
  cs2[l] = 0.0;
  col_reduce(l);
  if (lid.y == 0u && c < p.C) { DB[p.o_DB + c] = DB[p.o_DB + c] + cs[lid.x]; }
}
`,
};

const ELEMENTWISE_HEAD = /* wgsl */ `
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = wg_index(wid, nwg) * 256u + lid.x;
  if (i >= p.n) { return; }
`;

export const GELU_FWD: KernelDef = {
  name: 'gelu_fwd',
  args: [{ name: 'OUT', write: true }, { name: 'INP' }],
  params: ['n: u32', 'approx: i32'],
  code: ELEMENTWISE_HEAD + '  OUT[p.o_OUT + i] = gelu(INP[p.o_INP + i], p.approx);\n}\n',
};

export const GELU_BWD: KernelDef = {
  name: 'gelu_bwd',
  args: [{ name: 'DINP', write: true }, { name: 'INP' }, { name: 'DOUT' }],
  params: ['n: u32', 'approx: i32'],
  code: ELEMENTWISE_HEAD + '  DINP[p.o_DINP + i] = DOUT[p.o_DOUT + i] * gelu_grad(INP[p.o_INP + i], p.approx);\n}\n',
};

/** erf itself (the GELU kernels' building block), exposed for its accuracy test */
export const ERF: KernelDef = {
  name: 'erf',
  args: [{ name: 'OUT', write: true }, { name: 'INP' }],
  params: ['n: u32'],
  code: ELEMENTWISE_HEAD + '  OUT[p.o_OUT + i] = erf_f32(INP[p.o_INP + i]);\n}\n',
};

export const ADD: KernelDef = {
  name: 'add',
  args: [{ name: 'OUT', write: true }, { name: 'A' }, { name: 'B' }],
  params: ['n: u32'],
  code: ELEMENTWISE_HEAD + '  OUT[p.o_OUT + i] = A[p.o_A + i] + B[p.o_B + i];\n}\n',
};

export const COPY: KernelDef = {
  name: 'copy',
  args: [{ name: 'DST', write: true }, { name: 'SRC' }],
  params: ['n: u32'],
  code: ELEMENTWISE_HEAD + '  DST[p.o_DST + i] = SRC[p.o_SRC + i];\n}\n',
};

export const COPY_I32: KernelDef = { ...COPY, name: 'copy_i32', args: [{ name: 'DST', write: true, int: true }, { name: 'SRC', int: true }] };

export const FILL: KernelDef = {
  name: 'fill',
  args: [{ name: 'DST', write: true }],
  params: ['n: u32', 'value: f32'],
  code: ELEMENTWISE_HEAD + '  DST[p.o_DST + i] = p.value;\n}\n',
};

export const BIAS_ADD: KernelDef = {
  name: 'bias_add',
  args: [{ name: 'OUT', write: true }, { name: 'BIAS' }],
  params: ['n: u32', 'C: u32'],
  code: ELEMENTWISE_HEAD + '  OUT[p.o_OUT + i] = OUT[p.o_OUT + i] + BIAS[p.o_BIAS + i % p.C];\n}\n',
};

/** cols (B*GH*GW, C*P*P) from inp (B, C, H, W): one thread per column element */
export const IM2COL: KernelDef = {
  name: 'im2col',
  args: [{ name: 'COLS', write: true }, { name: 'INP' }],
  params: ['n: u32', 'C: u32', 'H: u32', 'W: u32', 'P: u32'],
  code: ELEMENTWISE_HEAD + /* wgsl */ `
  let KK = p.C * p.P * p.P;
  let GH = p.H / p.P;
  let GW = p.W / p.P;
  let row = i / KK;
  let col = i % KK;
  let gx = row % GW;
  let gy = (row / GW) % GH;
  let b = row / (GW * GH);
  let kx = col % p.P;
  let ky = (col / p.P) % p.P;
  let c = col / (p.P * p.P);
  COLS[p.o_COLS + i] = INP[p.o_INP + ((b * p.C + c) * p.H + gy * p.P + ky) * p.W + gx * p.P + kx];
}
`,
};

/** dinp (B, C, H, W) += col2im(dcols): patches do not overlap, so one thread per pixel */
export const COL2IM: KernelDef = {
  name: 'col2im',
  args: [{ name: 'DINP', write: true }, { name: 'DCOLS' }],
  params: ['n: u32', 'C: u32', 'H: u32', 'W: u32', 'P: u32'],
  code: ELEMENTWISE_HEAD + /* wgsl */ `
  let x = i % p.W;
  let y = (i / p.W) % p.H;
  let c = (i / (p.W * p.H)) % p.C;
  let b = i / (p.W * p.H * p.C);
  let GH = p.H / p.P;
  let GW = p.W / p.P;
  let KK = p.C * p.P * p.P;
  let row = (b * GH + y / p.P) * GW + x / p.P;
  let col = (c * p.P + y % p.P) * p.P + x % p.P;
  DINP[p.o_DINP + i] = DINP[p.o_DINP + i] + DCOLS[p.o_DCOLS + row * KK + col];
}
`,
};

export const SOFTMAX_FWD: KernelDef = {
  name: 'softmax_fwd',
  args: [{ name: 'OUT', write: true }, { name: 'INP' }],
  params: ['R: u32', 'C: u32'],
  code: REDUCE128 + /* wgsl */ `
@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let r = wg_index(wid, nwg);
  if (r >= p.R) { return; }
  let l = lid.x;
  let bi = p.o_INP + r * p.C;
  let bo = p.o_OUT + r * p.C;
  var m = neg_inf();
  for (var c = l; c < p.C; c = c + 128u) { m = nmax(m, INP[bi + c]); }
  m = wg_max(m, l);
  if (bad_max(m)) {
    for (var c = l; c < p.C; c = c + 128u) { OUT[bo + c] = nan_f32(); }
    return;
  }
  var s = 0.0;
  for (var c = l; c < p.C; c = c + 128u) { let e = exp(INP[bi + c] - m); OUT[bo + c] = e; s = s + e; }
  s = wg_sum(s, l);
  for (var c = l; c < p.C; c = c + 128u) { OUT[bo + c] = OUT[bo + c] / s; }
}
`,
};

export const SOFTMAX_BWD: KernelDef = {
  name: 'softmax_bwd',
  args: [{ name: 'DINP', write: true }, { name: 'OUT' }, { name: 'DOUT' }],
  params: ['R: u32', 'C: u32'],
  code: REDUCE128 + /* wgsl */ `
@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let r = wg_index(wid, nwg);
  if (r >= p.R) { return; }
  let l = lid.x;
  var d = 0.0;
  for (var c = l; c < p.C; c = c + 128u) { d = d + DOUT[p.o_DOUT + r * p.C + c] * OUT[p.o_OUT + r * p.C + c]; }
  d = wg_sum(d, l);
  for (var c = l; c < p.C; c = c + 128u) {
    let i = r * p.C + c;
    DINP[p.o_DINP + i] = OUT[p.o_OUT + i] * (DOUT[p.o_DOUT + i] - d);
  }
}
`,
};

/**
 * Attention with the probabilities: one workgroup of 128 per (b, h, query i). Scores, then the
 * softmax in place in PROBS, then out = P V. Causal rows have zeros past i.
 */
export const ATTN_PROBS: KernelDef = {
  name: 'attention_probs',
  args: [{ name: 'OUT', write: true }, { name: 'PROBS', write: true }, { name: 'QKV' }],
  params: ['B: u32', 'N: u32', 'NH: u32', 'HD: u32', 'scale: f32', 'causal: u32'],
  code: REDUCE128 + /* wgsl */ `
var<workgroup> qs: array<f32, 512>;
@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row = wg_index(wid, nwg);
  if (row >= p.B * p.NH * p.N) { return; }
  let l = lid.x;
  let i = row % p.N;
  let h = (row / p.N) % p.NH;
  let b = row / (p.N * p.NH);
  let D = p.NH * p.HD;
  let D3 = 3u * D;
  let base = p.o_QKV + b * p.N * D3;
  for (var d = l; d < p.HD; d = d + 128u) { qs[d] = QKV[base + i * D3 + h * p.HD + d]; }
  workgroupBarrier();
  var jend = p.N;
  if (p.causal != 0u) { jend = i + 1u; }
  let prow = p.o_PROBS + row * p.N;
  var m = neg_inf();
  for (var j = l; j < jend; j = j + 128u) {
    let ko = base + j * D3 + D + h * p.HD;
    var dot = 0.0;
    for (var d = 0u; d < p.HD; d = d + 1u) { dot = dot + qs[d] * QKV[ko + d]; }
    let s = dot * p.scale;
    PROBS[prow + j] = s;
    m = nmax(m, s);
  }
  m = wg_max(m, l);
  let bad = bad_max(m);
  var sum = 0.0;
  for (var j = l; j < jend; j = j + 128u) { let e = exp(PROBS[prow + j] - m); PROBS[prow + j] = e; sum = sum + e; }
  sum = wg_sum(sum, l);
  for (var j = l; j < p.N; j = j + 128u) {
    if (bad) { PROBS[prow + j] = nan_f32(); } else if (j < jend) { PROBS[prow + j] = PROBS[prow + j] / sum; } else { PROBS[prow + j] = 0.0; }
  }
  storageBarrier();
  workgroupBarrier();
  for (var d = l; d < p.HD; d = d + 128u) {
    if (bad) { OUT[p.o_OUT + (b * p.N + i) * D + h * p.HD + d] = nan_f32(); continue; }
    var acc = 0.0;
    for (var j = 0u; j < jend; j = j + 1u) { acc = acc + PROBS[prow + j] * QKV[base + j * D3 + 2u * D + h * p.HD + d]; }
    OUT[p.o_OUT + (b * p.N + i) * D + h * p.HD + d] = acc;
  }
}
`,
};

/**
 * Attention without probabilities (flash style): a workgroup of 64 query rows of one (b, h),
 * one thread per query; keys and values stream through workgroup memory 16 at a time with an
 * online softmax (running max, running sum, rescaled accumulator). HD <= 128.
 */
export const ATTN_FLASH: KernelDef = {
  name: 'attention_flash',
  args: [{ name: 'OUT', write: true }, { name: 'QKV' }],
  params: ['B: u32', 'N: u32', 'NH: u32', 'HD: u32', 'scale: f32', 'causal: u32', 'qblocks: u32'],
  code: /* wgsl */ `
var<workgroup> ks: array<f32, 2048>; // (16, HD <= 128)
var<workgroup> vs: array<f32, 2048>; // (16, HD <= 128)
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let g = wg_index(wid, nwg);
  if (g >= p.B * p.NH * p.qblocks) { return; }
  let qb = g % p.qblocks;
  let h = (g / p.qblocks) % p.NH;
  let b = g / (p.qblocks * p.NH);
  let D = p.NH * p.HD;
  let D3 = 3u * D;
  let base = p.o_QKV + b * p.N * D3;
  let i = qb * 64u + lid.x;
  let valid = i < p.N;
  var q: array<f32, 128>;
  var acc: array<f32, 128>;
  if (valid) {
    for (var d = 0u; d < p.HD; d = d + 1u) { q[d] = QKV[base + i * D3 + h * p.HD + d] * p.scale; }
  }
  var m = neg_inf();
  var lsum = 0.0;
  var kend = p.N;
  if (p.causal != 0u) { kend = min(p.N, qb * 64u + 64u); }
  for (var j0 = 0u; j0 < kend; j0 = j0 + 16u) {
    let nk = min(16u, kend - j0);
    for (var e = lid.x; e < nk * p.HD; e = e + 64u) {
      let jj = e / p.HD;
      let d = e % p.HD;
      let ko = base + (j0 + jj) * D3 + h * p.HD + d;
      ks[jj * 128u + d] = QKV[ko + D];
      vs[jj * 128u + d] = QKV[ko + 2u * D];
    }
    workgroupBarrier();
    if (valid) {
      for (var jj = 0u; jj < nk; jj = jj + 1u) {
        if (p.causal != 0u && j0 + jj > i) { break; }
        var s = 0.0;
        for (var d = 0u; d < p.HD; d = d + 1u) { s = s + q[d] * ks[jj * 128u + d]; }
        let mn = nmax(m, s);
        let corr = exp(m - mn);
        let pj = exp(s - mn);
        lsum = lsum * corr + pj;
        for (var d = 0u; d < p.HD; d = d + 1u) { acc[d] = acc[d] * corr + pj * vs[jj * 128u + d]; }
        m = mn;
      }
    }
    workgroupBarrier();
  }
  if (valid) {
    let bad = bad_max(m);
    for (var d = 0u; d < p.HD; d = d + 1u) {
      var v = acc[d] / lsum;
      if (bad) { v = nan_f32(); }
      OUT[p.o_OUT + (b * p.N + i) * D + h * p.HD + d] = v;
    }
  }
}
`,
};

/**
 * Attention backward, part 1: one workgroup per (b, h, query i):
 * DS[i, j] = P[i, j] * (dO_i . V_j - sum_j' P[i, j'] dO_i . V_j'), then dQ_i = scale * sum_j DS[i, j] K_j.
 */
export const ATTN_BWD_Q: KernelDef = {
  name: 'attention_bwd_q',
  args: [{ name: 'DQKV', write: true }, { name: 'DS', write: true }, { name: 'DOUT' }, { name: 'QKV' }, { name: 'PROBS' }],
  params: ['B: u32', 'N: u32', 'NH: u32', 'HD: u32', 'scale: f32', 'causal: u32'],
  code: REDUCE128 + /* wgsl */ `
var<workgroup> go: array<f32, 512>;
@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row = wg_index(wid, nwg);
  if (row >= p.B * p.NH * p.N) { return; }
  let l = lid.x;
  let i = row % p.N;
  let h = (row / p.N) % p.NH;
  let b = row / (p.N * p.NH);
  let D = p.NH * p.HD;
  let D3 = 3u * D;
  let base = b * p.N * D3;
  for (var d = l; d < p.HD; d = d + 128u) { go[d] = DOUT[p.o_DOUT + (b * p.N + i) * D + h * p.HD + d]; }
  workgroupBarrier();
  let prow = row * p.N;
  // causal: keys past i have probability 0, so their DS is 0 and is neither written nor read
  var jend = p.N;
  if (p.causal != 0u) { jend = i + 1u; }
  var dot = 0.0;
  for (var j = l; j < jend; j = j + 128u) {
    let vo = p.o_QKV + base + j * D3 + 2u * D + h * p.HD;
    var a = 0.0;
    for (var d = 0u; d < p.HD; d = d + 1u) { a = a + go[d] * QKV[vo + d]; }
    DS[p.o_DS + prow + j] = a;
    dot = dot + a * PROBS[p.o_PROBS + prow + j];
  }
  dot = wg_sum(dot, l);
  for (var j = l; j < jend; j = j + 128u) {
    let pij = PROBS[p.o_PROBS + prow + j];
    DS[p.o_DS + prow + j] = pij * (DS[p.o_DS + prow + j] - dot);
  }
  storageBarrier();
  workgroupBarrier();
  for (var d = l; d < p.HD; d = d + 128u) {
    var dq = 0.0;
    for (var j = 0u; j < jend; j = j + 1u) { dq = dq + DS[p.o_DS + prow + j] * QKV[p.o_QKV + base + j * D3 + D + h * p.HD + d]; }
    DQKV[p.o_DQKV + base + i * D3 + h * p.HD + d] = dq * p.scale;
  }
}
`,
};

/** Attention backward, part 2: one workgroup per (b, h, key j): dK_j = scale * sum_i DS[i, j] Q_i, dV_j = sum_i P[i, j] dO_i. */
export const ATTN_BWD_KV: KernelDef = {
  name: 'attention_bwd_kv',
  args: [{ name: 'DQKV', write: true }, { name: 'DS' }, { name: 'DOUT' }, { name: 'QKV' }, { name: 'PROBS' }],
  params: ['B: u32', 'N: u32', 'NH: u32', 'HD: u32', 'scale: f32', 'causal: u32'],
  code: /* wgsl */ `
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row = wg_index(wid, nwg);
  if (row >= p.B * p.NH * p.N) { return; }
  let j = row % p.N;
  let h = (row / p.N) % p.NH;
  let b = row / (p.N * p.NH);
  let D = p.NH * p.HD;
  let D3 = 3u * D;
  let base = b * p.N * D3;
  let bh = row - j; // (b * NH + h) * N
  for (var d = lid.x; d < p.HD; d = d + 64u) {
    var dk = 0.0;
    var dv = 0.0;
    var i0 = 0u;
    if (p.causal != 0u) { i0 = j; } // queries before j do not see key j
    for (var i = i0; i < p.N; i = i + 1u) {
      let e = (bh + i) * p.N + j;
      dk = dk + DS[p.o_DS + e] * QKV[p.o_QKV + base + i * D3 + h * p.HD + d];
      dv = dv + PROBS[p.o_PROBS + e] * DOUT[p.o_DOUT + (b * p.N + i) * D + h * p.HD + d];
    }
    DQKV[p.o_DQKV + base + j * D3 + D + h * p.HD + d] = dk * p.scale;
    DQKV[p.o_DQKV + base + j * D3 + 2u * D + h * p.HD + d] = dv;
  }
}
`,
};

/** per-row log-sum-exp over K classes (workgroup of 128) */
const LSE = /* wgsl */ `
fn row_lse(base: u32, K: u32, l: u32) -> f32 {
  var m = neg_inf();
  for (var k = l; k < K; k = k + 128u) { m = nmax(m, LOGITS[base + k]); }
  m = wg_max(m, l);
  var s = 0.0;
  for (var k = l; k < K; k = k + 128u) { s = s + exp(LOGITS[base + k] - m); }
  let r = m + log(wg_sum(s, l));
  if (bad_max(m)) { return nan_f32(); }
  return r;
}
`;

/** loss (1) = mean_b [(1 - eps) (lse - x_y) + eps/K * sum_k (lse - x_k)]: one workgroup loops over rows */
export const CE_FWD: KernelDef = {
  name: 'cross_entropy_fwd',
  args: [{ name: 'LOSS', write: true }, { name: 'LOGITS' }, { name: 'TARGETS', int: true }],
  params: ['B: u32', 'K: u32', 'smoothing: f32'],
  code: REDUCE128 + LSE + /* wgsl */ `
@compute @workgroup_size(128)
fn main(@builtin(local_invocation_id) lid: vec3u) {
  let l = lid.x;
  var total = 0.0;
  for (var b = 0u; b < p.B; b = b + 1u) {
    let base = p.o_LOGITS + b * p.K;
    let lse = row_lse(base, p.K, l);
    var sx = 0.0;
    for (var k = l; k < p.K; k = k + 128u) { sx = sx + LOGITS[base + k]; }
    sx = wg_sum(sx, l);
    let y = TARGETS[p.o_TARGETS + b];
    var row: f32;
    if (y < 0 || u32(y) >= p.K) {
      row = nan_f32();
    } else {
      row = (1.0 - p.smoothing) * (lse - LOGITS[base + u32(y)]);
      if (p.smoothing != 0.0) { row = row + p.smoothing / f32(p.K) * (f32(p.K) * lse - sx); }
    }
    total = total + row;
  }
  if (l == 0u) { LOSS[p.o_LOSS] = total / f32(p.B); }
}
`,
};

/** dlogits (B, K) = (softmax - q) / B: one workgroup per row */
export const CE_BWD: KernelDef = {
  name: 'cross_entropy_bwd',
  args: [{ name: 'DLOGITS', write: true }, { name: 'LOGITS' }, { name: 'TARGETS', int: true }],
  params: ['B: u32', 'K: u32', 'smoothing: f32'],
  code: REDUCE128 + LSE + /* wgsl */ `
@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let b = wg_index(wid, nwg);
  if (b >= p.B) { return; }
  let l = lid.x;
  let base = p.o_LOGITS + b * p.K;
  let lse = row_lse(base, p.K, l);
  let y = TARGETS[p.o_TARGETS + b];
  let bad = y < 0 || u32(y) >= p.K;
  let off = p.smoothing / f32(p.K);
  for (var k = l; k < p.K; k = k + 128u) {
    var q = off;
    if (!bad && k == u32(y)) { q = q + (1.0 - p.smoothing); }
    var g = (exp(LOGITS[base + k] - lse) - q) / f32(p.B);
    if (bad) { g = nan_f32(); }
    DLOGITS[p.o_DLOGITS + b * p.K + k] = g;
  }
}
`,
};

/**
 * Soft targets (mixup / cutmix): q = (1 - eps) t + eps / K per row; loss (1) = mean_b sum_k q (lse - x_k)
 * = mean_b [lse * sum_k q - sum_k q x_k]: one workgroup loops over rows
 */
export const SOFT_CE_FWD: KernelDef = {
  name: 'soft_cross_entropy_fwd',
  args: [{ name: 'LOSS', write: true }, { name: 'LOGITS' }, { name: 'TARGETS' }],
  params: ['B: u32', 'K: u32', 'smoothing: f32'],
  code: REDUCE128 + LSE + /* wgsl */ `
@compute @workgroup_size(128)
fn main(@builtin(local_invocation_id) lid: vec3u) {
  let l = lid.x;
  let off = p.smoothing / f32(p.K);
  var total = 0.0;
  for (var b = 0u; b < p.B; b = b + 1u) {
    let base = p.o_LOGITS + b * p.K;
    let lse = row_lse(base, p.K, l);
    var sq = 0.0;
    var sqx = 0.0;
    for (var k = l; k < p.K; k = k + 128u) {
      let q = (1.0 - p.smoothing) * TARGETS[p.o_TARGETS + b * p.K + k] + off;
      sq = sq + q;
      sqx = sqx + q * LOGITS[base + k];
    }
    sq = wg_sum(sq, l);
    sqx = wg_sum(sqx, l);
    total = total + (lse * sq - sqx);
  }
  if (l == 0u) { LOSS[p.o_LOSS] = total / f32(p.B); }
}
`,
};

/** dlogits (B, K) = (softmax * sum_k q - q) / B, q = (1 - eps) t + eps / K: one workgroup per row */
export const SOFT_CE_BWD: KernelDef = {
  name: 'soft_cross_entropy_bwd',
  args: [{ name: 'DLOGITS', write: true }, { name: 'LOGITS' }, { name: 'TARGETS' }],
  params: ['B: u32', 'K: u32', 'smoothing: f32'],
  code: REDUCE128 + LSE + /* wgsl */ `
@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let b = wg_index(wid, nwg);
  if (b >= p.B) { return; }
  let l = lid.x;
  let base = p.o_LOGITS + b * p.K;
  let tb = p.o_TARGETS + b * p.K;
  let lse = row_lse(base, p.K, l);
  let off = p.smoothing / f32(p.K);
  var sq = 0.0;
  for (var k = l; k < p.K; k = k + 128u) { sq = sq + (1.0 - p.smoothing) * TARGETS[tb + k] + off; }
  sq = wg_sum(sq, l);
  for (var k = l; k < p.K; k = k + 128u) {
    let q = (1.0 - p.smoothing) * TARGETS[tb + k] + off;
    DLOGITS[p.o_DLOGITS + b * p.K + k] = (exp(LOGITS[base + k] - lse) * sq - q) / f32(p.B);
  }
}
`,
};

/** out (R) i32 = first index of the row maximum of inp (R, C) (torch.argmax): one thread per row */
export const ARGMAX_ROWS: KernelDef = {
  name: 'argmax_rows',
  args: [{ name: 'OUT', write: true, int: true }, { name: 'INP' }],
  params: ['n: u32', 'C: u32'],
  code: ELEMENTWISE_HEAD + /* wgsl */ `
  let base = p.o_INP + i * p.C;
  var best = 0u;
  var m = INP[base];
  for (var c = 1u; c < p.C; c = c + 1u) {
    let v = INP[base + c];
    if (v > m) { m = v; best = c; }
  }
  OUT[p.o_OUT + i] = i32(best);
}
`,
};

/** torch.optim.AdamW, one element per thread; bias corrections and step size come from the host */
export const ADAMW: KernelDef = {
  name: 'adamw',
  args: [{ name: 'PARAM', write: true }, { name: 'GRAD' }, { name: 'M1', write: true }, { name: 'M2', write: true }, { name: 'SCALE' }],
  params: ['n: u32', 'decay: f32', 'hasDecay: u32', 'omb1: f32', 'b2: f32', 'omb2: f32', 'stepSize: f32', 'bc2sqrt: f32',
    'eps: f32', 'hasScale: u32'],
  code: ELEMENTWISE_HEAD + /* wgsl */ `
  var g = GRAD[p.o_GRAD + i];
  if (p.hasScale != 0u) { g = g * SCALE[p.o_SCALE]; }
  var w = PARAM[p.o_PARAM + i];
  if (p.hasDecay != 0u) { w = w * p.decay; }
  let m0 = M1[p.o_M1 + i];
  let m = m0 + p.omb1 * (g - m0);
  let v = p.b2 * M2[p.o_M2 + i] + p.omb2 * g * g;
  M1[p.o_M1 + i] = m;
  M2[p.o_M2 + i] = v;
  PARAM[p.o_PARAM + i] = w - p.stepSize * m / (sqrt(v) / p.bc2sqrt + p.eps);
}
`,
};

/** sum of squares, pass 1: up to 256 workgroups, grid-stride with Kahan summation, one partial each */
export const SUMSQ_PARTIAL: KernelDef = {
  name: 'sumsq_partial',
  args: [{ name: 'PART', write: true }, { name: 'X' }],
  params: ['n: u32', 'stride: u32'],
  code: REDUCE128 + /* wgsl */ `
@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  var s = 0.0;
  var comp = 0.0;
  for (var i = wid.x * 128u + lid.x; i < p.n; i = i + p.stride) {
    let x = X[p.o_X + i];
    let y = x * x - comp;
    let t = s + y;
    comp = (t - s) - y;
    s = t;
  }
  s = wg_sum(s, lid.x);
  if (lid.x == 0u) { PART[p.o_PART + wid.x] = s; }
}
`,
};

/** pass 2: norm (1) = sqrt(sum of the partials) */
export const NORM_FINAL: KernelDef = {
  name: 'norm_final',
  args: [{ name: 'NORM', write: true }, { name: 'PART' }],
  params: ['count: u32'],
  code: REDUCE128 + /* wgsl */ `
@compute @workgroup_size(128)
fn main(@builtin(local_invocation_id) lid: vec3u) {
  var s = 0.0;
  for (var i = lid.x; i < p.count; i = i + 128u) { s = s + PART[p.o_PART + i]; }
  s = wg_sum(s, lid.x);
  if (lid.x == 0u) { NORM[p.o_NORM] = sqrt(s); }
}
`,
};

/** grads *= maxNorm / (norm + 1e-6) where that is below 1 or NaN (clip_grad_norm_) */
export const CLIP_SCALE: KernelDef = {
  name: 'clip_scale',
  args: [{ name: 'G', write: true }, { name: 'NORM' }],
  params: ['n: u32', 'maxNorm: f32'],
  code: ELEMENTWISE_HEAD + /* wgsl */ `
  let coef = p.maxNorm / (NORM[p.o_NORM] + 1e-6);
  if (is_nan(coef) || coef < 1.0) { G[p.o_G + i] = G[p.o_G + i] * coef; }
}
`,
};


/**
 * Row copy between token tensors (copyRows). reduce 0: one thread per copied element (output
 * rows of different images are distinct). reduce 1 (outN 0): one thread per output element,
 * looping over the images in order, so the batch sum (or the last image's rows) needs no atomics.
 */
export const COPY_ROWS: KernelDef = {
  name: 'copy_rows',
  args: [{ name: 'OUT', write: true }, { name: 'INP' }],
  params: ['n: u32', 'B: u32', 'outN: u32', 'outOff: u32', 'inN: u32', 'inOff: u32', 'count: u32', 'C: u32', 'acc: u32', 'reduce: u32'],
  code: ELEMENTWISE_HEAD + /* wgsl */ `
  let per = p.count * p.C;
  if (p.reduce == 0u) {
    let b = i / per;
    let r = i % per;
    let t = r / p.C;
    let j = r % p.C;
    let o = p.o_OUT + (b * p.outN + p.outOff + t) * p.C + j;
    let x = INP[p.o_INP + (b * p.inN + p.inOff + t) * p.C + j];
    if (p.acc != 0u) { OUT[o] = OUT[o] + x; } else { OUT[o] = x; }
    return;
  }
  let t = i / p.C;
  let j = i % p.C;
  let o = p.o_OUT + (p.outOff + t) * p.C + j;
  var v = 0.0;
  if (p.acc != 0u) { v = OUT[o]; }
  for (var b = 0u; b < p.B; b = b + 1u) {
    let x = INP[p.o_INP + (b * p.inN + p.inOff + t) * p.C + j];
    if (p.acc != 0u) { v = v + x; } else { v = x; }
  }
  OUT[o] = v;
}
`,
};

/** out (B, C) = mean of rows off..off+count-1 of inp (B, N, C): one thread per output element */
export const MEAN_ROWS: KernelDef = {
  name: 'mean_rows',
  args: [{ name: 'OUT', write: true }, { name: 'INP' }],
  params: ['n: u32', 'N: u32', 'off: u32', 'count: u32', 'C: u32'],
  code: ELEMENTWISE_HEAD + /* wgsl */ `
  let b = i / p.C;
  let j = i % p.C;
  var s = 0.0;
  for (var t = 0u; t < p.count; t = t + 1u) { s = s + INP[p.o_INP + (b * p.N + p.off + t) * p.C + j]; }
  OUT[p.o_OUT + i] = s / f32(p.count);
}
`,
};

/** dinp (B, N, C) rows off.. += dout (B, C) / count: one thread per touched element */
export const MEAN_ROWS_BWD: KernelDef = {
  name: 'mean_rows_bwd',
  args: [{ name: 'DINP', write: true }, { name: 'DOUT' }],
  params: ['n: u32', 'N: u32', 'off: u32', 'count: u32', 'C: u32'],
  code: ELEMENTWISE_HEAD + /* wgsl */ `
  let per = p.count * p.C;
  let b = i / per;
  let t = (i % per) / p.C;
  let j = i % p.C;
  let o = p.o_DINP + (b * p.N + p.off + t) * p.C + j;
  DINP[o] = DINP[o] + DOUT[p.o_DOUT + b * p.C + j] / f32(p.count);
}
`,
};

/** out (R, C) += inp * gamma (C) */
export const MULCOL_ADD: KernelDef = {
  name: 'mulcol_add',
  args: [{ name: 'OUT', write: true }, { name: 'INP' }, { name: 'G' }],
  params: ['n: u32', 'C: u32'],
  code: ELEMENTWISE_HEAD + '  OUT[p.o_OUT + i] = OUT[p.o_OUT + i] + INP[p.o_INP + i] * G[p.o_G + i % p.C];\n}\n',
};

/** dinp (R, C) = dout * gamma (C) */
export const MULCOL_BWD_DINP: KernelDef = {
  name: 'mulcol_bwd_dinp',
  args: [{ name: 'DINP', write: true }, { name: 'DOUT' }, { name: 'G' }],
  params: ['n: u32', 'C: u32'],
  code: ELEMENTWISE_HEAD + '  DINP[p.o_DINP + i] = DOUT[p.o_DOUT + i] * G[p.o_G + i % p.C];\n}\n',
};

/** dgamma (C) += column sums of dout * inp (R, C) */
export const MULCOL_BWD_DG: KernelDef = {
  name: 'mulcol_bwd_dg',
  args: [{ name: 'DG', write: true }, { name: 'DOUT' }, { name: 'INP' }],
  params: ['R: u32', 'C: u32'],
  code: COLSUM + /* wgsl */ `
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let c = wid.x * 16u + lid.x;
  let l = lid.y * 16u + lid.x;
  var s = 0.0;
  if (c < p.C) {
    for (var r = lid.y; r < p.R; r = r + 16u) { s = s + DOUT[p.o_DOUT + r * p.C + c] * INP[p.o_INP + r * p.C + c]; }
  }
  cs[l] = s;
  cs2[l] = 0.0;
  col_reduce(l);
  if (lid.y == 0u && c < p.C) { DG[p.o_DG + c] = DG[p.o_DG + c] + cs[lid.x]; }
}
`,
};

export const ACT_FWD: KernelDef = {
  name: 'act_fwd',
  args: [{ name: 'OUT', write: true }, { name: 'INP' }],
  params: ['n: u32', 'kind: i32'],
  code: ELEMENTWISE_HEAD + '  OUT[p.o_OUT + i] = act(INP[p.o_INP + i], p.kind);\n}\n',
};

export const ACT_BWD: KernelDef = {
  name: 'act_bwd',
  args: [{ name: 'DINP', write: true }, { name: 'INP' }, { name: 'DOUT' }],
  params: ['n: u32', 'kind: i32'],
  code: ELEMENTWISE_HEAD + '  DINP[p.o_DINP + i] = DOUT[p.o_DOUT + i] * act_grad(INP[p.o_INP + i], p.kind);\n}\n',
};

/** out (R, Hh) = act(inp[:, :Hh]) * inp[:, Hh:] */
export const GLU_FWD: KernelDef = {
  name: 'glu_fwd',
  args: [{ name: 'OUT', write: true }, { name: 'INP' }],
  params: ['n: u32', 'Hh: u32', 'kind: i32'],
  code: ELEMENTWISE_HEAD + /* wgsl */ `
  let r = i / p.Hh;
  let j = i % p.Hh;
  let a = p.o_INP + r * 2u * p.Hh + j;
  OUT[p.o_OUT + i] = act(INP[a], p.kind) * INP[a + p.Hh];
}
`,
};

/** dinp (R, 2Hh): both halves per (r, j) */
export const GLU_BWD: KernelDef = {
  name: 'glu_bwd',
  args: [{ name: 'DINP', write: true }, { name: 'INP' }, { name: 'DOUT' }],
  params: ['n: u32', 'Hh: u32', 'kind: i32'],
  code: ELEMENTWISE_HEAD + /* wgsl */ `
  let r = i / p.Hh;
  let j = i % p.Hh;
  let e = r * 2u * p.Hh + j;
  let a = INP[p.o_INP + e];
  let g = INP[p.o_INP + e + p.Hh];
  let d = DOUT[p.o_DOUT + i];
  DINP[p.o_DINP + e] = d * g * act_grad(a, p.kind);
  DINP[p.o_DINP + e + p.Hh] = d * act(a, p.kind);
}
`,
};

/** out (n) = alpha a + beta b (out may be a or b) */
export const AXPBY: KernelDef = {
  name: 'axpby',
  args: [{ name: 'OUT', write: true }, { name: 'A' }, { name: 'B' }],
  params: ['n: u32', 'alpha: f32', 'beta: f32'],
  code: ELEMENTWISE_HEAD + '  OUT[p.o_OUT + i] = p.alpha * A[p.o_A + i] + p.beta * B[p.o_B + i];\n}\n',
};

/** out (n) = inp * alpha (out may be inp) */
export const SCALE: KernelDef = {
  name: 'scale',
  args: [{ name: 'OUT', write: true }, { name: 'INP' }],
  params: ['n: u32', 'alpha: f32'],
  code: ELEMENTWISE_HEAD + '  OUT[p.o_OUT + i] = INP[p.o_INP + i] * p.alpha;\n}\n',
};

/** ema (n) = ema * decay + (1 - decay) * p */
export const EMA: KernelDef = {
  name: 'ema',
  args: [{ name: 'EMA', write: true }, { name: 'P' }],
  params: ['n: u32', 'decay: f32', 'omd: f32'],
  code: ELEMENTWISE_HEAD + '  EMA[p.o_EMA + i] = EMA[p.o_EMA + i] * p.decay + p.omd * P[p.o_P + i];\n}\n',
};

/**
 * Cross attention (MAP pooling): one workgroup of 128 per (b, h, query i); scores of the Nk keys,
 * max-subtracted softmax in place in PROBS, then out = P V. q (B, Nq, D), kv (B, Nk, 2D) = [k, v].
 */
export const XATTN_FWD: KernelDef = {
  name: 'cross_attention_fwd',
  args: [{ name: 'OUT', write: true }, { name: 'PROBS', write: true }, { name: 'Q' }, { name: 'KV' }],
  params: ['B: u32', 'Nq: u32', 'Nk: u32', 'NH: u32', 'HD: u32', 'scale: f32'],
  code: REDUCE128 + /* wgsl */ `
var<workgroup> qs: array<f32, 512>;
@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row = wg_index(wid, nwg);
  if (row >= p.B * p.NH * p.Nq) { return; }
  let l = lid.x;
  let i = row % p.Nq;
  let h = (row / p.Nq) % p.NH;
  let b = row / (p.Nq * p.NH);
  let D = p.NH * p.HD;
  let qo = p.o_Q + (b * p.Nq + i) * D + h * p.HD;
  let kvb = p.o_KV + b * p.Nk * 2u * D + h * p.HD;
  for (var d = l; d < p.HD; d = d + 128u) { qs[d] = Q[qo + d]; }
  workgroupBarrier();
  let prow = p.o_PROBS + row * p.Nk;
  var m = neg_inf();
  for (var j = l; j < p.Nk; j = j + 128u) {
    var dot = 0.0;
    for (var d = 0u; d < p.HD; d = d + 1u) { dot = dot + qs[d] * KV[kvb + j * 2u * D + d]; }
    let s = dot * p.scale;
    PROBS[prow + j] = s;
    m = nmax(m, s);
  }
  m = wg_max(m, l);
  let bad = bad_max(m);
  var sum = 0.0;
  for (var j = l; j < p.Nk; j = j + 128u) { let e = exp(PROBS[prow + j] - m); PROBS[prow + j] = e; sum = sum + e; }
  sum = wg_sum(sum, l);
  for (var j = l; j < p.Nk; j = j + 128u) {
    if (bad) { PROBS[prow + j] = nan_f32(); } else { PROBS[prow + j] = PROBS[prow + j] / sum; }
  }
  storageBarrier();
  workgroupBarrier();
  for (var d = l; d < p.HD; d = d + 128u) {
    let o = p.o_OUT + (b * p.Nq + i) * D + h * p.HD + d;
    if (bad) { OUT[o] = nan_f32(); continue; }
    var acc = 0.0;
    for (var j = 0u; j < p.Nk; j = j + 1u) { acc = acc + PROBS[prow + j] * KV[kvb + j * 2u * D + D + d]; }
    OUT[o] = acc;
  }
}
`,
};

/**
 * Cross attention backward, part 1: one workgroup per (b, h, query i):
 * DS[i, j] = P[i, j] (dO_i . V_j - sum_j' P[i, j'] dO_i . V_j'), dQ_i = scale sum_j DS[i, j] K_j.
 */
export const XATTN_BWD_Q: KernelDef = {
  name: 'cross_attention_bwd_q',
  args: [{ name: 'DQ', write: true }, { name: 'DS', write: true }, { name: 'DOUT' }, { name: 'KV' }, { name: 'PROBS' }],
  params: ['B: u32', 'Nq: u32', 'Nk: u32', 'NH: u32', 'HD: u32', 'scale: f32'],
  code: REDUCE128 + /* wgsl */ `
var<workgroup> go: array<f32, 512>;
@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row = wg_index(wid, nwg);
  if (row >= p.B * p.NH * p.Nq) { return; }
  let l = lid.x;
  let i = row % p.Nq;
  let h = (row / p.Nq) % p.NH;
  let b = row / (p.Nq * p.NH);
  let D = p.NH * p.HD;
  let qo = (b * p.Nq + i) * D + h * p.HD;
  let kvb = p.o_KV + b * p.Nk * 2u * D + h * p.HD;
  for (var d = l; d < p.HD; d = d + 128u) { go[d] = DOUT[p.o_DOUT + qo + d]; }
  workgroupBarrier();
  let prow = row * p.Nk;
  var dot = 0.0;
  for (var j = l; j < p.Nk; j = j + 128u) {
    var a = 0.0;
    for (var d = 0u; d < p.HD; d = d + 1u) { a = a + go[d] * KV[kvb + j * 2u * D + D + d]; }
    DS[p.o_DS + prow + j] = a;
    dot = dot + a * PROBS[p.o_PROBS + prow + j];
  }
  dot = wg_sum(dot, l);
  for (var j = l; j < p.Nk; j = j + 128u) {
    DS[p.o_DS + prow + j] = PROBS[p.o_PROBS + prow + j] * (DS[p.o_DS + prow + j] - dot);
  }
  storageBarrier();
  workgroupBarrier();
  for (var d = l; d < p.HD; d = d + 128u) {
    var dq = 0.0;
    for (var j = 0u; j < p.Nk; j = j + 1u) { dq = dq + DS[p.o_DS + prow + j] * KV[kvb + j * 2u * D + d]; }
    DQ[p.o_DQ + qo + d] = dq * p.scale;
  }
}
`,
};

/** part 2: one workgroup per (b, h, key j): dK_j = scale sum_i DS[i, j] Q_i, dV_j = sum_i P[i, j] dO_i */
export const XATTN_BWD_KV: KernelDef = {
  name: 'cross_attention_bwd_kv',
  args: [{ name: 'DKV', write: true }, { name: 'DS' }, { name: 'DOUT' }, { name: 'Q' }, { name: 'PROBS' }],
  params: ['B: u32', 'Nq: u32', 'Nk: u32', 'NH: u32', 'HD: u32', 'scale: f32'],
  code: /* wgsl */ `
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row = wg_index(wid, nwg);
  if (row >= p.B * p.NH * p.Nk) { return; }
  let j = row % p.Nk;
  let h = (row / p.Nk) % p.NH;
  let b = row / (p.Nk * p.NH);
  let D = p.NH * p.HD;
  let bh = b * p.NH + h;
  let ko = p.o_DKV + (b * p.Nk + j) * 2u * D + h * p.HD;
  for (var d = lid.x; d < p.HD; d = d + 64u) {
    var dk = 0.0;
    var dv = 0.0;
    for (var i = 0u; i < p.Nq; i = i + 1u) {
      let e = (bh * p.Nq + i) * p.Nk + j;
      let qi = (b * p.Nq + i) * D + h * p.HD + d;
      dk = dk + DS[p.o_DS + e] * Q[p.o_Q + qi];
      dv = dv + PROBS[p.o_PROBS + e] * DOUT[p.o_DOUT + qi];
    }
    DKV[ko + d] = dk * p.scale;
    DKV[ko + D + d] = dv;
  }
}
`,
};

export const ALL_KERNELS: readonly KernelDef[] = [
  GEMM, ERF, LN_FWD, LN_BWD_ROWS, LN_BWD_COLS, BIAS_BWD, GELU_FWD, GELU_BWD, ADD, COPY, COPY_I32, FILL, BIAS_ADD, IM2COL, COL2IM,
  SOFTMAX_FWD, SOFTMAX_BWD, ATTN_PROBS, ATTN_FLASH, ATTN_BWD_Q, ATTN_BWD_KV, CE_FWD, CE_BWD, SOFT_CE_FWD, SOFT_CE_BWD, ARGMAX_ROWS, ADAMW, SUMSQ_PARTIAL,
  NORM_FINAL, CLIP_SCALE, COPY_ROWS, MEAN_ROWS, MEAN_ROWS_BWD, MULCOL_ADD, MULCOL_BWD_DINP, MULCOL_BWD_DG, ACT_FWD, ACT_BWD,
  GLU_FWD, GLU_BWD, AXPBY, SCALE, EMA, XATTN_FWD, XATTN_BWD_Q, XATTN_BWD_KV,
];
