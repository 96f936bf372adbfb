// The native op list: plain C++17, no Node-API. Every buffer is row-major float32; the shape of
// each is given in the comment beside it. All ops are multi-threaded through vk::parallel_for
// unless named *_st (single-threaded, for use inside an already-parallel region).
#pragma once
#include <cstdint>

namespace vk {

// ---- GEMM (gemm.cc) ----
// C (M, N) = alpha * op(A) @ op(B) + beta * C
// op(A) is (M, K): A is (M, K) with row stride lda, or (K, M) when transA.
// op(B) is (K, N): B is (K, N) with row stride ldb, or (N, K) when transB.
// beta == 0 overwrites C without reading it (so NaN in the old C does not leak).
void sgemm(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda,
           const float* B, int ldb, float beta, float* C, int ldc);
void sgemm_st(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda,
              const float* B, int ldb, float beta, float* C, int ldc);
const char* gemm_isa();  // "avx512", "avx2", or "portable": what the dispatcher picked
// measured fp32 FMA peak (GFLOP/s, 1 FMA = 2 FLOP) with the best ISA, on `threads` threads (peak.cc)
double fma_peak_gflops(int threads, double seconds);

// ---- Linear with a fused epilogue (gemm.cc): bias and GELU applied to each C tile region as it is finished ----
// out (M, N) = act(inp (M, K) @ weight (N, K)^T + bias (N)); bias may be null.
// accumulate: out += inp @ weight^T + bias (no activation allowed then). act: -1 none, 0 GELU erf, 1 GELU tanh.
void linear_forward(float* out, const float* inp, const float* weight, const float* bias, int M, int N, int K,
                    bool accumulate, int act);

// ---- LayerNorm (layernorm.cc) ----
// out (R, C), mean (R) and rstd (R) may be null; inp (R, C); weight (C), bias (C)
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int64_t R, int C, float eps);
// dinp (R, C) is accumulated (+=); dweight (C), dbias (C) accumulated; dout (R, C)
void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int64_t R, int C);

// ---- GELU (gelu.cc) ---- approx: 0 exact erf, 1 tanh
void gelu_forward(float* out, const float* inp, int64_t n, int approx);
// dinp (n) = dout * gelu'(inp)
void gelu_backward(float* dinp, const float* inp, const float* dout, int64_t n, int approx);

// ---- Softmax over the last dim (softmax.cc) ----
void softmax_forward(float* out, const float* inp, int64_t R, int C);
// dinp (R, C) = out * (dout - rowsum(dout * out)); out (R, C) from softmax_forward, dout (R, C)
void softmax_backward(float* dinp, const float* out, const float* dout, int64_t R, int C);

// ---- Multi-head self-attention (attention.cc) ----
// out (B, N, D), probs (B, NH, N, N) or null, qkv (B, N, 3*D) laid out as timm's qkv Linear
// output: q = qkv[..., 0:D], k = qkv[..., D:2D], v = qkv[..., 2D:3D], head h at h*HD within each.
// out = softmax(q k^T * scale) v, heads concatenated.
// causal: query i attends to keys j <= i only (PyTorch's additive -inf mask / is_causal): the
// masked probabilities are exactly 0 and masked positions are skipped, not multiplied by 0.
void attention_forward(float* out, float* probs, const float* qkv, int B, int N, int NH, int HD,
                       float scale, bool causal = false);
// dqkv (B, N, 3*D) overwritten; dout (B, N, D); probs (B, NH, N, N) saved by forward (with the
// same causal flag: masked score gradients are exactly 0)
void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* probs, int B,
                        int N, int NH, int HD, float scale, bool causal = false);

// ---- Patch embedding: im2col for a conv with stride = kernel = P (patch_embed.cc) ----
// cols (B * GH * GW, C * P * P), inp (B, C, H, W), GH = H / P, GW = W / P; column order (c, ky, kx)
void im2col_patches(float* cols, const float* inp, int B, int C, int H, int W, int P);
// inverse (accumulates): dinp (B, C, H, W) += col2im(dcols)
void col2im_patches(float* dinp, const float* dcols, int B, int C, int H, int W, int P);

// ---- Elementwise (elementwise.cc) ----
void add_forward(float* out, const float* a, const float* b, int64_t n);  // out = a + b
// out (R, C) += bias (C) broadcast over rows
void bias_add(float* out, const float* bias, int64_t R, int C);
// dbias (C) += sum over rows of dout (R, C)
void bias_backward(float* dbias, const float* dout, int64_t R, int C);

}  // namespace vk
