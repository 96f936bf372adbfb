// LayerNorm over the last dim, as torch.nn.functional.layer_norm (biased variance, eps inside sqrt).
// Forward: float two-pass per row (the row, 192-1024 floats, stays in L1): mean from 16/32 partial
// lane sums, then the variance of (x - mean), then out = (x - mean) rstd w + b. Vectorized with
// run-time dispatch (AVX-512 / AVX2 / NEON / portable).
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/simd_math.h"
#include "threadpool.h"

namespace vk {
namespace {

using namespace simd;

// ---- forward rows ----
void ln_rows_portable(float* out, float* mean, float* rstd, const float* inp, const float* w,
                      const float* b, int64_t r0, int64_t r1, int C, float eps) {
  for (int64_t r = r0; r < r1; r++) {
    const float* x = inp + r * C;
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= C; i += 8)
      for (int j = 0; j < 8; j++) acc[j] += x[i + j];
    float s = 0.f;
    for (; i < C; i++) s += x[i];
    for (int j = 0; j < 8; j++) s += acc[j];
    const float m = s / C;
    for (int j = 0; j < 8; j++) acc[j] = 0.f;
    float v = 0.f;
    for (i = 0; i + 8 <= C; i += 8)
      for (int j = 0; j < 8; j++) {
        const float d = x[i + j] - m;
        acc[j] += d * d;
      }
    for (; i < C; i++) v += (x[i] - m) * (x[i] - m);
    for (int j = 0; j < 8; j++) v += acc[j];
    const float rs = 1.f / std::sqrt(v / C + eps);
    float* o = out + r * C;
    for (i = 0; i < C; i++) o[i] = (x[i] - m) * rs * w[i] + b[i];
    if (mean) mean[r] = m;
    if (rstd) rstd[r] = rs;
  }
}

#if VK_SIMD_X86
VK_TARGET("avx512f,fma") void ln_rows_avx512(float* out, float* mean, float* rstd,
                                                            const float* inp, const float* w,
                                                            const float* b, int64_t r0, int64_t r1,
                                                            int C, float eps) {
  const int tail = C % 16, Cv = C - tail;
  const __mmask16 km = tail_mask_512(tail);
  for (int64_t r = r0; r < r1; r++) {
    const float* x = inp + r * C;
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= Cv; i += 32) {
      s0 = _mm512_add_ps(s0, _mm512_loadu_ps(x + i));
      s1 = _mm512_add_ps(s1, _mm512_loadu_ps(x + i + 16));
    }
    if (i < Cv) s0 = _mm512_add_ps(s0, _mm512_loadu_ps(x + i));
    if (tail) s1 = _mm512_add_ps(s1, _mm512_maskz_loadu_ps(km, x + Cv));
    const float m = hsum_512(_mm512_add_ps(s0, s1)) / C;
    const __m512 vm = _mm512_set1_ps(m);
    s0 = _mm512_setzero_ps();
    s1 = _mm512_setzero_ps();
    for (i = 0; i + 32 <= Cv; i += 32) {
      const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(x + i), vm);
      const __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(x + i + 16), vm);
      s0 = _mm512_fmadd_ps(d0, d0, s0);
      s1 = _mm512_fmadd_ps(d1, d1, s1);
    }
    if (i < Cv) {
      const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(x + i), vm);
      s0 = _mm512_fmadd_ps(d0, d0, s0);
    }
    if (tail) {
      const __m512 d1 = _mm512_maskz_sub_ps(km, _mm512_maskz_loadu_ps(km, x + Cv), vm);
      s1 = _mm512_fmadd_ps(d1, d1, s1);
    }
    const float v = hsum_512(_mm512_add_ps(s0, s1));
    const float rs = 1.f / std::sqrt(v / C + eps);
    const __m512 vr = _mm512_set1_ps(rs);
    float* o = out + r * C;
    for (i = 0; i < Cv; i += 16) {
      const __m512 xh = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm), vr);
      _mm512_storeu_ps(o + i, _mm512_fmadd_ps(xh, _mm512_loadu_ps(w + i), _mm512_loadu_ps(b + i)));
    }
    if (tail) {
      const __m512 xh = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(km, x + Cv), vm), vr);
      _mm512_mask_storeu_ps(o + Cv, km,
                            _mm512_fmadd_ps(xh, _mm512_maskz_loadu_ps(km, w + Cv), _mm512_maskz_loadu_ps(km, b + Cv)));
    }
    if (mean) mean[r] = m;
    if (rstd) rstd[r] = rs;
  }
}

VK_TARGET("avx2,fma") void ln_rows_avx2(float* out, float* mean, float* rstd,
                                                       const float* inp, const float* w, const float* b,
                                                       int64_t r0, int64_t r1, int C, float eps) {
  const int tail = C % 8, Cv = C - tail;
  const __m256i km = tail_mask_256(tail);
  const __m256 kf = _mm256_castsi256_ps(km);
  for (int64_t r = r0; r < r1; r++) {
    const float* x = inp + r * C;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= Cv; i += 16) {
      s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x + i));
      s1 = _mm256_add_ps(s1, _mm256_loadu_ps(x + i + 8));
    }
    if (i < Cv) s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x + i));
    if (tail) s1 = _mm256_add_ps(s1, _mm256_maskload_ps(x + Cv, km));
    const float m = hsum_256(_mm256_add_ps(s0, s1)) / C;
    const __m256 vm = _mm256_set1_ps(m);
    s0 = _mm256_setzero_ps();
    s1 = _mm256_setzero_ps();
    for (i = 0; i + 16 <= Cv; i += 16) {
      const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + i), vm);
      const __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vm);
      s0 = _mm256_fmadd_ps(d0, d0, s0);
      s1 = _mm256_fmadd_ps(d1, d1, s1);
    }
    if (i < Cv) {
      const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + i), vm);
      s0 = _mm256_fmadd_ps(d0, d0, s0);
    }
    if (tail) {
      const __m256 d1 = _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(x + Cv, km), vm), kf);
      s1 = _mm256_fmadd_ps(d1, d1, s1);
    }
    const float v = hsum_256(_mm256_add_ps(s0, s1));
    const float rs = 1.f / std::sqrt(v / C + eps);
    const __m256 vr = _mm256_set1_ps(rs);
    float* o = out + r * C;
    for (i = 0; i < Cv; i += 8) {
      const __m256 xh = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm), vr);
      _mm256_storeu_ps(o + i, _mm256_fmadd_ps(xh, _mm256_loadu_ps(w + i), _mm256_loadu_ps(b + i)));
    }
    if (tail) {
      const __m256 xh = _mm256_mul_ps(_mm256_sub_ps(_mm256_maskload_ps(x + Cv, km), vm), vr);
      _mm256_maskstore_ps(o + Cv, km,
                          _mm256_fmadd_ps(xh, _mm256_maskload_ps(w + Cv, km), _mm256_maskload_ps(b + Cv, km)));
    }
    if (mean) mean[r] = m;
    if (rstd) rstd[r] = rs;
  }
}
#endif

#if VK_NEON
// the AVX2 algorithm on 4 lanes: two-pass mean / variance with 8 partial sums, then the affine map
void ln_rows_neon(float* out, float* mean, float* rstd, const float* inp, const float* w, const float* b,
                  int64_t r0, int64_t r1, int C, float eps) {
  for (int64_t r = r0; r < r1; r++) {
    const float* x = inp + r * C;
    float32x4_t s0 = vdupq_n_f32(0.f), s1 = vdupq_n_f32(0.f);
    int i = 0;
    for (; i + 8 <= C; i += 8) {
      s0 = vaddq_f32(s0, vld1q_f32(x + i));
      s1 = vaddq_f32(s1, vld1q_f32(x + i + 4));
    }
    float s = 0.f;
    for (; i < C; i++) s += x[i];
    const float m = (s + hsum_neon(vaddq_f32(s0, s1))) / C;
    const float32x4_t vm = vdupq_n_f32(m);
    s0 = s1 = vdupq_n_f32(0.f);
    for (i = 0; i + 8 <= C; i += 8) {
      const float32x4_t d0 = vsubq_f32(vld1q_f32(x + i), vm), d1 = vsubq_f32(vld1q_f32(x + i + 4), vm);
      s0 = vfmaq_f32(s0, d0, d0);
      s1 = vfmaq_f32(s1, d1, d1);
    }
    float v = 0.f;
    for (; i < C; i++) v += (x[i] - m) * (x[i] - m);
    v += hsum_neon(vaddq_f32(s0, s1));
    const float rs = 1.f / std::sqrt(v / C + eps);
    const float32x4_t vr = vdupq_n_f32(rs);
    float* o = out + r * C;
    for (i = 0; i + 4 <= C; i += 4) {
      const float32x4_t xh = vmulq_f32(vsubq_f32(vld1q_f32(x + i), vm), vr);
      vst1q_f32(o + i, vfmaq_f32(vld1q_f32(b + i), xh, vld1q_f32(w + i)));
    }
    for (; i < C; i++) o[i] = (x[i] - m) * rs * w[i] + b[i];
    if (mean) mean[r] = m;
    if (rstd) rstd[r] = rs;
  }
}
#endif

using FwdFn = void (*)(float*, float*, float*, const float*, const float*, const float*, int64_t,
                       int64_t, int, float);
FwdFn pick_fwd() {
#if VK_SIMD_X86
  if (isa() == kAvx512) return ln_rows_avx512;
  if (isa() == kAvx2) return ln_rows_avx2;
#elif VK_NEON
  if (isa() == kNeon) return ln_rows_neon;
#endif
  return ln_rows_portable;
}

// ---- backward rows: d += (g w - mean(g w) - xh mean(g w xh)) rstd ----
void lnb_rows_portable(float* dinp, const float* dout, const float* inp, const float* w,
                       const float* mean, const float* rstd, int64_t r0, int64_t r1, int C) {
  for (int64_t r = r0; r < r1; r++) {
    const float* x = inp + r * C;
    const float* g = dout + r * C;
    const float m = mean[r], rs = rstd[r];
    float a0[8] = {0, 0, 0, 0, 0, 0, 0, 0}, a1[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    float sg = 0.f, sgx = 0.f;
    int i = 0;
    for (; i + 8 <= C; i += 8)
      for (int j = 0; j < 8; j++) {
        const float gw = g[i + j] * w[i + j];
        a0[j] += gw;
        a1[j] += gw * ((x[i + j] - m) * rs);
      }
    for (; i < C; i++) {
      const float gw = g[i] * w[i];
      sg += gw;
      sgx += gw * ((x[i] - m) * rs);
    }
    for (int j = 0; j < 8; j++) {
      sg += a0[j];
      sgx += a1[j];
    }
    const float mg = sg / C, mgx = sgx / C;
    float* d = dinp + r * C;
    for (i = 0; i < C; i++) {
      const float xh = (x[i] - m) * rs;
      d[i] += (g[i] * w[i] - mg - xh * mgx) * rs;
    }
  }
}

#if VK_SIMD_X86
VK_TARGET("avx512f,fma") void lnb_rows_avx512(float* dinp, const float* dout,
                                                             const float* inp, const float* w,
                                                             const float* mean, const float* rstd,
                                                             int64_t r0, int64_t r1, int C) {
  for (int64_t r = r0; r < r1; r++) {
    const float* x = inp + r * C;
    const float* g = dout + r * C;
    const __m512 vm = _mm512_set1_ps(mean[r]), vr = _mm512_set1_ps(rstd[r]);
    __m512 sg = _mm512_setzero_ps(), sgx = _mm512_setzero_ps();
    for (int i = 0; i < C; i += 16) {
      const __mmask16 k = C - i >= 16 ? (__mmask16)0xffff : tail_mask_512(C - i);
      const __m512 gw = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, g + i), _mm512_maskz_loadu_ps(k, w + i));
      const __m512 xh = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vm), vr);
      sg = _mm512_add_ps(sg, gw);
      sgx = _mm512_fmadd_ps(gw, xh, sgx);
    }
    const __m512 mg = _mm512_set1_ps(hsum_512(sg) / C), mgx = _mm512_set1_ps(hsum_512(sgx) / C);
    float* d = dinp + r * C;
    for (int i = 0; i < C; i += 16) {
      const __mmask16 k = C - i >= 16 ? (__mmask16)0xffff : tail_mask_512(C - i);
      const __m512 gw = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, g + i), _mm512_maskz_loadu_ps(k, w + i));
      const __m512 xh = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vm), vr);
      const __m512 t = _mm512_mul_ps(_mm512_sub_ps(_mm512_sub_ps(gw, mg), _mm512_mul_ps(xh, mgx)), vr);
      _mm512_mask_storeu_ps(d + i, k, _mm512_add_ps(_mm512_maskz_loadu_ps(k, d + i), t));
    }
  }
}
#endif

using BwdFn = void (*)(float*, const float*, const float*, const float*, const float*, const float*,
                       int64_t, int64_t, int);
BwdFn pick_bwd() {
#if VK_SIMD_X86
  if (isa() == kAvx512) return lnb_rows_avx512;
#endif
  return lnb_rows_portable;
}

}  // namespace

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int64_t R, int C, float eps) {
  static const FwdFn fn = pick_fwd();
  parallel_for(R, [&](int64_t r0, int64_t r1) {
    fn(out, mean, rstd, inp, weight, bias, r0, r1, C, eps);
  }, 16);
}

void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int64_t R, int C) {
  static const BwdFn fn = pick_bwd();
  // dinp rows are independent; dweight/dbias are reduced over rows afterwards (each column summed
  // in row order, in double) so that the result does not depend on the thread count.
  parallel_for(R, [&](int64_t r0, int64_t r1) { fn(dinp, dout, inp, weight, mean, rstd, r0, r1, C); }, 16);
  constexpr int CB = 64;  // columns per block: contiguous row segments, accumulators in L1
  parallel_for((C + CB - 1) / CB, [&](int64_t b0, int64_t b1) {
    double dw[CB], db[CB];
    for (int64_t blk = b0; blk < b1; blk++) {
      const int c0 = (int)blk * CB, nc = std::min(CB, C - c0);
      for (int j = 0; j < nc; j++) dw[j] = db[j] = 0.0;
      for (int64_t r = 0; r < R; r++) {
        const float* g = dout + r * C + c0;
        const float* x = inp + r * C + c0;
        const float m = mean[r], rs = rstd[r];
        for (int j = 0; j < nc; j++) {
          dw[j] += (double)g[j] * ((x[j] - m) * rs);
          db[j] += g[j];
        }
      }
      for (int j = 0; j < nc; j++) {
        dweight[c0 + j] += (float)dw[j];
        dbias[c0 + j] += (float)db[j];
      }
    }
  }, 1);
}

}  // namespace vk
