// The native entry points' argument validation and kernel calls, below N-API: each entry is a
// template over an argument source Ar, so that the Node addon (addon.cc, Ar = Napi arguments) and
// the libFuzzer harness (fuzz/native/fuzz_entries.cc, Ar = bytes from the fuzzer) run the same
// checks. Every integer is a non-negative integer that fits the kernel's type (never truncated),
// every size product is computed in 64 bits with an overflow check (2^53: JS's safe integers), and
// every buffer's length covers what its dimensions (and leading dimensions) address, all before
// any kernel touches memory.
//
// Ar provides (argument i, named `name` in messages):
//   [[noreturn]] fail(i, name, msg)        reject argument i
//   [[noreturn]] reject(msg)               reject the call (a size overflow)
//   float* f32(i, name, need, nullable)     a float buffer of >= need elements (nullptr if nullable and absent)
//   double number(i, name); float f(i, name); bool b(i, name, optional)
// and derives from ArgChecks<Ar> for the arithmetic checks.
#pragma once
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <string>

#include "kernels/kernels.h"
#include "threadpool.h"

namespace vk {
namespace entry {

constexpr int64_t kMaxSafe = (int64_t(1) << 53) - 1;  // Number.MAX_SAFE_INTEGER

inline std::string num(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  if (d == std::floor(d) && std::fabs(d) < 1e18) return std::to_string((long long)d);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  return buf;
}

template <class Ar>
struct ArgChecks {  // Ar: the derived argument source
  const char* fn;
  explicit ArgChecks(const char* f) : fn(f) {}
  Ar& self() { return static_cast<Ar&>(*this); }
  // a non-negative integer <= max (a safe integer; never truncated)
  int64_t count(size_t i, const char* name, int64_t max = kMaxSafe) {
    const double d = self().number(i, name);
    if (!(d >= 0 && d <= (double)max && d == std::floor(d)))
      self().fail(i, name, "must be an integer in [0, " + std::to_string(max) + "], received " + num(d));
    return (int64_t)d;
  }
  int dim(size_t i, const char* name) { return (int)count(i, name, INT_MAX); }
  // a * b, or a rejection naming the product when it does not fit in 53 bits
  int64_t mul(int64_t a, int64_t b, const char* what) {
    if (a != 0 && b > kMaxSafe / a)
      self().reject(std::string(fn) + ": " + what + " = " + std::to_string(a) + " x " + std::to_string(b) +
                    " overflows (more than 2^53 elements)");
    return a * b;
  }
  int64_t mul(std::initializer_list<int64_t> xs, const char* what) {
    int64_t p = 1;
    for (int64_t x : xs) p = mul(p, x, what);
    return p;
  }
  // elements a (rows, cols) matrix with row stride ld addresses: (rows - 1) * ld + cols
  int64_t span(int64_t rows, int64_t cols, int64_t ld, const char* what) {
    if (rows == 0 || cols == 0) return 0;
    const int64_t s = mul(rows - 1, ld, what);
    if (s > kMaxSafe - cols) self().reject(std::string(fn) + ": " + what + " overflows (more than 2^53 elements)");
    return s + cols;
  }
  // the product must also fit the kernel's int (e.g. a row width)
  int fits_int(int64_t v, const char* what) {
    if (v > INT_MAX)
      self().reject(std::string(fn) + ": " + what + " = " + std::to_string(v) + " exceeds " + std::to_string(INT_MAX));
    return (int)v;
  }
};

template <class Ar>
int approx_arg(Ar& a, size_t i) {
  const int64_t v = a.count(i, "approx", 1);
  return (int)v;
}

struct AttnDims {
  int B, N, NH, HD;
  int64_t BND, BNNN;
};
template <class Ar>
AttnDims attn_dims(Ar& a, size_t i0) {
  AttnDims d{a.dim(i0, "B"), a.dim(i0 + 1, "N"), a.dim(i0 + 2, "NH"), a.dim(i0 + 3, "HD"), 0, 0};
  // the kernels index rows of width 3 * NH * HD with int
  a.fits_int(a.mul({3, d.NH, d.HD}, "3 x NH x HD"), "3 x NH x HD");
  d.BND = a.mul({d.B, d.N, d.NH, d.HD}, "B x N x NH x HD");
  a.mul(d.BND, 3, "B x N x 3D");
  d.BNNN = a.mul({d.B, d.NH, d.N, d.N}, "B x NH x N x N");
  return d;
}

struct PatchDims {
  int B, C, H, W, P;
  int64_t n;
};
template <class Ar>
PatchDims patch_dims(Ar& a) {
  PatchDims d{a.dim(2, "B"), a.dim(3, "C"), a.dim(4, "H"), a.dim(5, "W"), a.dim(6, "P"), 0};
  if (d.P <= 0 || d.H % d.P || d.W % d.P)
    a.fail(6, "P", "must be a positive divisor of H = " + std::to_string(d.H) + " and W = " + std::to_string(d.W) +
                       ", received " + std::to_string(d.P));
  a.fits_int(a.mul({d.C, d.P, d.P}, "C x P x P"), "C x P x P");
  d.n = a.mul({d.B, d.C, d.H, d.W}, "B x C x H x W");
  return d;
}

template <class Ar>
void set_threads(Ar& a) {
  vk::set_threads((int)std::max<int64_t>(1, a.count(0, "n", 1 << 20)));  // clamped to [1, kMaxThreads]
}
// gemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
template <class Ar>
void gemm(Ar& a) {
  const bool ta = a.b(0, "transA"), tb = a.b(1, "transB");
  const int M = a.dim(2, "M"), N = a.dim(3, "N"), K = a.dim(4, "K");
  const float alpha = a.f(5, "alpha"), beta = a.f(10, "beta");
  const int lda = a.dim(7, "lda"), ldb = a.dim(9, "ldb"), ldc = a.dim(12, "ldc");
  // A is (M, K), or (K, M) when transA; rows of width `cols` need ld >= cols
  const int64_t arows = ta ? K : M, acols = ta ? M : K, brows = tb ? N : K, bcols = tb ? K : N;
  if (arows > 1 && lda < acols) a.fail(7, "lda", "must be >= " + std::to_string(acols) + ", received " + std::to_string(lda));
  if (brows > 1 && ldb < bcols) a.fail(9, "ldb", "must be >= " + std::to_string(bcols) + ", received " + std::to_string(ldb));
  if (M > 1 && ldc < N) a.fail(12, "ldc", "must be >= N = " + std::to_string(N) + ", received " + std::to_string(ldc));
  const float* A = a.f32(6, ta ? "A (K, M) with row stride lda" : "A (M, K) with row stride lda",
                         K && M ? a.span(arows, acols, lda, "A's extent") : 0);
  const float* B = a.f32(8, tb ? "B (N, K) with row stride ldb" : "B (K, N) with row stride ldb",
                         K && N ? a.span(brows, bcols, ldb, "B's extent") : 0);
  float* C = a.f32(11, "C (M, N) with row stride ldc", a.span(M, N, ldc, "C's extent"));
  vk::sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
// linearForward(out, inp, weight, bias|null, M, N, K, accumulate, act)  act: -1 none, 0 gelu, 1 gelu_tanh
template <class Ar>
void linear_forward(Ar& a) {
  const int M = a.dim(4, "M"), N = a.dim(5, "N"), K = a.dim(6, "K");
  const bool acc = a.b(7, "accumulate");
  const double actd = a.number(8, "act");
  if (!(actd == -1 || actd == 0 || actd == 1) || (acc && actd != -1))
    a.fail(8, "act", "must be -1 (none), 0 (gelu) or 1 (gelu_tanh), and -1 with accumulate; received " + num(actd));
  float* out = a.f32(0, "out (M, N)", a.mul(M, N, "M x N"));
  const float* inp = a.f32(1, "inp (M, K)", a.mul(M, K, "M x K"));
  const float* w = a.f32(2, "weight (N, K)", a.mul(N, K, "N x K"));
  const float* bias = a.f32(3, "bias (N)", N, true);
  vk::linear_forward(out, inp, w, bias, M, N, K, acc, (int)actd);
}
// layernormForward(out, mean|null, rstd|null, inp, weight, bias, R, C, eps)
template <class Ar>
void layernorm_forward(Ar& a) {
  const int64_t R = a.count(6, "R");
  const int C = a.dim(7, "C");
  const int64_t RC = a.mul(R, C, "R x C");
  float* out = a.f32(0, "out (R, C)", RC);
  float* mean = a.f32(1, "mean (R)", R, true);
  float* rstd = a.f32(2, "rstd (R)", R, true);
  const float* inp = a.f32(3, "inp (R, C)", RC);
  const float* w = a.f32(4, "weight (C)", C);
  const float* bias = a.f32(5, "bias (C)", C);
  vk::layernorm_forward(out, mean, rstd, inp, w, bias, R, C, a.f(8, "eps"));
}
// layernormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, R, C)
template <class Ar>
void layernorm_backward(Ar& a) {
  const int64_t R = a.count(8, "R");
  const int C = a.dim(9, "C");
  const int64_t RC = a.mul(R, C, "R x C");
  vk::layernorm_backward(a.f32(0, "dinp (R, C)", RC), a.f32(1, "dweight (C)", C), a.f32(2, "dbias (C)", C),
                         a.f32(3, "dout (R, C)", RC), a.f32(4, "inp (R, C)", RC), a.f32(5, "weight (C)", C),
                         a.f32(6, "mean (R)", R), a.f32(7, "rstd (R)", R), R, C);
}
// geluForward(out, inp, n, approx)
template <class Ar>
void gelu_forward(Ar& a) {
  const int64_t n = a.count(2, "n");
  const int approx = approx_arg(a, 3);
  vk::gelu_forward(a.f32(0, "out (n)", n), a.f32(1, "inp (n)", n), n, approx);
}
// geluBackward(dinp, inp, dout, n, approx)
template <class Ar>
void gelu_backward(Ar& a) {
  const int64_t n = a.count(3, "n");
  const int approx = approx_arg(a, 4);
  vk::gelu_backward(a.f32(0, "dinp (n)", n), a.f32(1, "inp (n)", n), a.f32(2, "dout (n)", n), n, approx);
}
// softmaxForward(out, inp, R, C)
template <class Ar>
void softmax_forward(Ar& a) {
  const int64_t R = a.count(2, "R");
  const int C = a.dim(3, "C");
  const int64_t RC = a.mul(R, C, "R x C");
  vk::softmax_forward(a.f32(0, "out (R, C)", RC), a.f32(1, "inp (R, C)", RC), R, C);
}
// softmaxBackward(dinp, out, dout, R, C)
template <class Ar>
void softmax_backward(Ar& a) {
  const int64_t R = a.count(3, "R");
  const int C = a.dim(4, "C");
  const int64_t RC = a.mul(R, C, "R x C");
  vk::softmax_backward(a.f32(0, "dinp (R, C)", RC), a.f32(1, "out (R, C)", RC), a.f32(2, "dout (R, C)", RC), R, C);
}
// attentionForward(out, probs|null, qkv, B, N, NH, HD, scale, causal?)
template <class Ar>
void attention_forward(Ar& a) {
  const AttnDims d = attn_dims(a, 3);
  const float scale = a.f(7, "scale");
  const bool causal = a.b(8, "causal", true);
  float* out = a.f32(0, "out (B, N, D)", d.BND);
  float* probs = a.f32(1, "probs (B, NH, N, N)", d.BNNN, true);
  const float* qkv = a.f32(2, "qkv (B, N, 3D)", 3 * d.BND);
  vk::attention_forward(out, probs, qkv, d.B, d.N, d.NH, d.HD, scale, causal);
}
// attentionBackward(dqkv, dout, qkv, probs, B, N, NH, HD, scale, causal?)
template <class Ar>
void attention_backward(Ar& a) {
  const AttnDims d = attn_dims(a, 4);
  const float scale = a.f(8, "scale");
  const bool causal = a.b(9, "causal", true);
  vk::attention_backward(a.f32(0, "dqkv (B, N, 3D)", 3 * d.BND), a.f32(1, "dout (B, N, D)", d.BND),
                         a.f32(2, "qkv (B, N, 3D)", 3 * d.BND), a.f32(3, "probs (B, NH, N, N)", d.BNNN), d.B, d.N,
                         d.NH, d.HD, scale, causal);
}
// im2colPatches(cols, inp, B, C, H, W, P)
template <class Ar>
void im2col_patches(Ar& a) {
  const PatchDims d = patch_dims(a);
  vk::im2col_patches(a.f32(0, "cols (B*GH*GW, C*P*P)", d.n), a.f32(1, "inp (B, C, H, W)", d.n), d.B, d.C, d.H, d.W,
                     d.P);
}
// col2imPatches(dinp, dcols, B, C, H, W, P)
template <class Ar>
void col2im_patches(Ar& a) {
  const PatchDims d = patch_dims(a);
  vk::col2im_patches(a.f32(0, "dinp (B, C, H, W)", d.n), a.f32(1, "dcols (B*GH*GW, C*P*P)", d.n), d.B, d.C, d.H,
                     d.W, d.P);
}
// add(out, a, b, n)
template <class Ar>
void add(Ar& a) {
  const int64_t n = a.count(3, "n");
  vk::add_forward(a.f32(0, "out (n)", n), a.f32(1, "a (n)", n), a.f32(2, "b (n)", n), n);
}
// biasAdd(out, bias, R, C)
template <class Ar>
void bias_add(Ar& a) {
  const int64_t R = a.count(2, "R");
  const int C = a.dim(3, "C");
  vk::bias_add(a.f32(0, "out (R, C)", a.mul(R, C, "R x C")), a.f32(1, "bias (C)", C), R, C);
}
// biasBackward(dbias, dout, R, C)
template <class Ar>
void bias_backward(Ar& a) {
  const int64_t R = a.count(2, "R");
  const int C = a.dim(3, "C");
  vk::bias_backward(a.f32(0, "dbias (C)", C), a.f32(1, "dout (R, C)", a.mul(R, C, "R x C")), R, C);
}

}  // namespace entry
}  // namespace vk
