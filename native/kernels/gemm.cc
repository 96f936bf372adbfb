// Packed (Goto/BLIS-style) fp32 SGEMM with run-time ISA dispatch.
//
//   C (M, N) = alpha * op(A) @ op(B) + beta * C, all row-major.
//
// Design
//   * Microkernels: AVX-512F 14x32 (28 zmm accumulators; exact-edge variants for 1..14 rows and
//     masked last vector), AVX2+FMA 6x16, AArch64 NEON 8x12, portable 4x8 (GCC/Clang generic
//     vectors). Chosen once via vk::cpu_has_* (platform.h; NEON is baseline on AArch64);
//     VITKIT_ISA=avx2|portable caps the choice. No -m flags needed.
//   * B is packed into NR-wide k-major panels (the transB / nn.Linear case with 16x16 register
//     transposes on AVX-512). op(A) is read in place by the kernel (row stride lda, or k stride
//     lda when transposed); only partial row panels of the non-exact-edge kernels are packed.
//   * Loop order, per B column block (make_plan): if all of K for the block fits the L2 budget
//     ("K inner"), B is packed once for all K blocks and each MR-row panel is finished over all
//     of K before the next (its C tiles stay in L1/L2; row panels are independent work items);
//     otherwise the classic order: KC x NC block of B, all row panels, next K block.
//   * Threads: K-inner plans hand out (column block, row panel) items dynamically (own range
//     first, then steal); classic plans split C into a static tm x tn grid. Each thread packs
//     into its own thread_local, 64-byte aligned buffers (sgemm_st is safe inside parallel code).
//   * beta is applied by the first K block only (beta == 0 never reads C); alpha at every store.
//   * No fast-math: zeros are not skipped, NaN/Inf propagate like the naive product.
#include <algorithm>
#include <array>
#include <atomic>
#include <memory>
#include <utility>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "kernels/kernels.h"
#include "threadpool.h"

// VK_X86, VK_TARGET, CPU checks, prefetch and aligned allocation for GCC/Clang and MSVC;
// VITKIT_NO_X86 builds only the portable code on x86 (portability check).
#include "platform.h"

namespace vk {
namespace {

// ---------------------------------------------------------------------------------------------
// Kernel set description
// ---------------------------------------------------------------------------------------------
// ukr(kc, Ap, Bp, C, ldc, alpha, beta, nr): C[MR x NR] = alpha * Ap^T Bp + beta * C  (beta == 0:
// no read). Kernels with exact edges (see KernelSet::edge) write only rows < ROWS, cols < nr.
// ak: k stride of A for the k-major layout (MR for a packed panel, lda when reading op(A) = A^T
// straight from memory); unused by the i-major layout.
using UkrFn = void (*)(int kc, const float* Ap, int64_t ak, const float* Bp, float* C, int64_t ldc,
                       float alpha, float beta, int nr);
using PackFn = void (*)(int kc, int n, const float* src, int64_t ld, float* dst);

struct KernelSet {
  const char* name;
  int MR, NR, KC, NC, AS;  // AS: row stride of the i-major A pack (>= KC)
  UkrFn ukr_imaj;          // full tile, A i-major: Ap[i * ak + k]
  UkrFn ukr_kmaj;          // full tile, A k-major: Ap[k * ak + i]
  // Exact edge kernels, or null: edge[kmaj][(rows - 1) * 2 + (nr > NR / 2)], any nr <= NR.
  const UkrFn* edge[2];
  PackFn pack_b_n;  // kc x n block of B (K, N) -> one NR panel (zero padded columns)
  PackFn pack_b_t;  // kc x n block of B^T, B (N, K) -> one NR panel (zero padded columns)
  PackFn pack_a_t;  // kc x m block of A^T, A (K, M) -> k-major MR panel (zero padded rows)
};

// ---------------------------------------------------------------------------------------------
// Generic packing (baseline ISA; fixed-size copies so the compiler emits plain vector moves)
// ---------------------------------------------------------------------------------------------
// dst[k * W + j] = src[k * ld + j], j < n; zero for n <= j < W
template <int W>
void pack_rows(int kc, int n, const float* src, int64_t ld, float* dst) {
  if (n == W) {
    for (int k = 0; k < kc; k++) std::memcpy(dst + k * W, src + k * ld, sizeof(float) * W);
  } else {
    for (int k = 0; k < kc; k++) {
      float* d = dst + k * W;
      const float* sk = src + k * ld;
      for (int j = 0; j < n; j++) d[j] = sk[j];
      for (int j = n; j < W; j++) d[j] = 0.f;
    }
  }
}
// dst[k * W + j] = src[j * ld + k], j < n; zero for n <= j < W
template <int W>
void pack_cols(int kc, int n, const float* src, int64_t ld, float* dst) {
  constexpr int KB = 8;
  for (int k0 = 0; k0 < kc; k0 += KB) {
    const int kk = std::min(KB, kc - k0);
    for (int j = 0; j < n; j++) {
      const float* sj = src + j * ld + k0;
      for (int k = 0; k < kk; k++) dst[(k0 + k) * W + j] = sj[k];
    }
    for (int k = 0; k < kk; k++)
      for (int j = n; j < W; j++) dst[(k0 + k) * W + j] = 0.f;
  }
}

// ---------------------------------------------------------------------------------------------
// Portable kernel (4 x 8), written so the compiler can vectorize it at the baseline ISA.
// ---------------------------------------------------------------------------------------------
constexpr int P_MR = 4, P_NR = 8, P_KC = 256, P_NC = 2048, P_AS = P_KC + 16;

#if defined(__GNUC__)
// GCC / Clang generic vectors: SSE2 on x86-64 baseline, NEON on AArch64. (Plain loops get
// vectorized along k by GCC, with shuffles, which is 4x slower.)
typedef float vk_v4 __attribute__((vector_size(16)));

template <bool KMAJ>
void ukr_portable(int kc, const float* Ap, int64_t ak, const float* Bp, float* C, int64_t ldc,
                  float alpha, float beta, int) {
  static_assert(P_NR == 8, "two 4-wide vectors per row");
  vk_v4 acc[P_MR][2];
  for (int i = 0; i < P_MR; i++) acc[i][0] = acc[i][1] = vk_v4{0.f, 0.f, 0.f, 0.f};
  for (int k = 0; k < kc; k++) {
    vk_v4 b0, b1;
    std::memcpy(&b0, Bp, sizeof(b0));
    std::memcpy(&b1, Bp + 4, sizeof(b1));
#pragma GCC unroll 4
    for (int i = 0; i < P_MR; i++) {
      const float a = KMAJ ? Ap[i] : Ap[i * ak];
      const vk_v4 av = {a, a, a, a};
      acc[i][0] += av * b0;
      acc[i][1] += av * b1;
    }
    Ap += KMAJ ? ak : 1;
    Bp += P_NR;
  }
  for (int i = 0; i < P_MR; i++) {
    float r[P_NR];
    std::memcpy(r, &acc[i][0], sizeof(acc[i][0]));
    std::memcpy(r + 4, &acc[i][1], sizeof(acc[i][1]));
    float* c = C + i * ldc;
    if (beta == 0.f) {
      for (int j = 0; j < P_NR; j++) c[j] = alpha * r[j];
    } else {
      for (int j = 0; j < P_NR; j++) c[j] = alpha * r[j] + beta * c[j];
    }
  }
}
#else
template <bool KMAJ>
void ukr_portable(int kc, const float* Ap, int64_t ak, const float* Bp, float* C, int64_t ldc,
                  float alpha, float beta, int) {
  float acc[P_MR][P_NR] = {};
  for (int k = 0; k < kc; k++) {
    for (int i = 0; i < P_MR; i++) {
      const float a = KMAJ ? Ap[i] : Ap[i * ak];
      for (int j = 0; j < P_NR; j++) acc[i][j] += a * Bp[j];
    }
    Ap += KMAJ ? ak : 1;
    Bp += P_NR;
  }
  for (int i = 0; i < P_MR; i++) {
    float* c = C + i * ldc;
    for (int j = 0; j < P_NR; j++)
      c[j] = beta == 0.f ? alpha * acc[i][j] : alpha * acc[i][j] + beta * c[j];
  }
}
#endif

#if VK_NEON
// ---------------------------------------------------------------------------------------------
// AArch64 NEON kernel (8 x 12): 24 accumulators + 3 B vectors of the 32 vector registers
// ---------------------------------------------------------------------------------------------
constexpr int N_MR = 8, N_NR = 12, N_KC = 256, N_NC = 1536, N_AS = N_KC + 16;

template <bool KMAJ>
void ukr_neon(int kc, const float* VK_RESTRICT Ap, int64_t ak, const float* VK_RESTRICT Bp, float* C,
              int64_t ldc, float alpha, float beta, int) {
  float32x4_t c0[N_MR], c1[N_MR], c2[N_MR];
#pragma GCC unroll 8
  for (int i = 0; i < N_MR; i++) c0[i] = c1[i] = c2[i] = vdupq_n_f32(0.f);
  for (int k = 0; k < kc; k++) {
    const float32x4_t b0 = vld1q_f32(Bp), b1 = vld1q_f32(Bp + 4), b2 = vld1q_f32(Bp + 8);
#pragma GCC unroll 8
    for (int i = 0; i < N_MR; i++) {
      const float a = KMAJ ? Ap[i] : Ap[i * ak];
      c0[i] = vfmaq_n_f32(c0[i], b0, a);
      c1[i] = vfmaq_n_f32(c1[i], b1, a);
      c2[i] = vfmaq_n_f32(c2[i], b2, a);
    }
    Ap += KMAJ ? ak : 1;
    Bp += N_NR;
  }
#pragma GCC unroll 8
  for (int i = 0; i < N_MR; i++) {
    float* c = C + i * ldc;
    float32x4_t v0 = vmulq_n_f32(c0[i], alpha), v1 = vmulq_n_f32(c1[i], alpha), v2 = vmulq_n_f32(c2[i], alpha);
    if (beta != 0.f) {  // beta == 0 never reads C
      v0 = vfmaq_n_f32(v0, vld1q_f32(c), beta);
      v1 = vfmaq_n_f32(v1, vld1q_f32(c + 4), beta);
      v2 = vfmaq_n_f32(v2, vld1q_f32(c + 8), beta);
    }
    vst1q_f32(c, v0);
    vst1q_f32(c + 4, v1);
    vst1q_f32(c + 8, v2);
  }
}
#endif  // VK_NEON

#if VK_X86
// ---------------------------------------------------------------------------------------------
// AVX2 + FMA kernel (6 x 16)
// ---------------------------------------------------------------------------------------------
constexpr int A2_MR = 6, A2_NR = 16, A2_KC = 256, A2_NC = 1536, A2_AS = A2_KC + 16;

template <bool KMAJ>
VK_TARGET("avx2,fma") void ukr_avx2(int kc, const float* VK_RESTRICT Ap, int64_t ak,
                                                  const float* VK_RESTRICT Bp, float* C,
                                                  int64_t ldc, float alpha, float beta, int) {
  __m256 c0[A2_MR], c1[A2_MR];
#pragma GCC unroll 6
  for (int i = 0; i < A2_MR; i++) {
    c0[i] = _mm256_setzero_ps();
    c1[i] = _mm256_setzero_ps();
  }
  for (int k = 0; k < kc; k++) {
    __m256 b0 = _mm256_load_ps(Bp), b1 = _mm256_load_ps(Bp + 8);
#pragma GCC unroll 6
    for (int i = 0; i < A2_MR; i++) {
      __m256 a = _mm256_broadcast_ss(KMAJ ? Ap + i : Ap + i * ak);
      c0[i] = _mm256_fmadd_ps(a, b0, c0[i]);
      c1[i] = _mm256_fmadd_ps(a, b1, c1[i]);
    }
    Ap += KMAJ ? ak : 1;
    Bp += A2_NR;
  }
  __m256 va = _mm256_set1_ps(alpha);
  if (beta == 0.f) {
#pragma GCC unroll 6
    for (int i = 0; i < A2_MR; i++) {
      _mm256_storeu_ps(C + i * ldc, _mm256_mul_ps(va, c0[i]));
      _mm256_storeu_ps(C + i * ldc + 8, _mm256_mul_ps(va, c1[i]));
    }
  } else {
    __m256 vb = _mm256_set1_ps(beta);
#pragma GCC unroll 6
    for (int i = 0; i < A2_MR; i++) {
      float* c = C + i * ldc;
      _mm256_storeu_ps(c, _mm256_fmadd_ps(vb, _mm256_loadu_ps(c), _mm256_mul_ps(va, c0[i])));
      _mm256_storeu_ps(c + 8,
                       _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + 8), _mm256_mul_ps(va, c1[i])));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// AVX-512F kernel (14 x 32)
// ---------------------------------------------------------------------------------------------
constexpr int A5_MR = 14, A5_NR = 32, A5_KC = 256, A5_NC = 1024, A5_AS = A5_KC + 16;

template <int ROWS, int NV, bool KMAJ>
VK_TARGET("avx512f,fma") void ukr_avx512(int kc, const float* VK_RESTRICT Ap,
                                                      int64_t ak, const float* VK_RESTRICT Bp, float* C,
                                                      int64_t ldc, float alpha, float beta, int nr) {
  // mask of the valid lanes of the last vector (c1 if NV == 2, else c0)
  const int rem = NV == 2 ? nr - 16 : nr;
  const __mmask16 ml = (__mmask16)(rem >= 16 ? 0xFFFFu : ((1u << rem) - 1u));
  __m512 c0[ROWS], c1[ROWS];
#pragma GCC unroll 14
  for (int i = 0; i < ROWS; i++) {
    c0[i] = _mm512_setzero_ps();
    c1[i] = _mm512_setzero_ps();
    if (beta != 0.f) {
      _mm_prefetch((const char*)(C + i * ldc), _MM_HINT_T0);
      if (NV == 2) _mm_prefetch((const char*)(C + i * ldc + 16), _MM_HINT_T0);
    }
  }
#pragma GCC unroll 2
  for (int k = 0; k < kc; k++) {
    __m512 b0 = _mm512_load_ps(Bp), b1;
    if (NV == 2) b1 = _mm512_load_ps(Bp + 16);
    _mm_prefetch((const char*)(Bp + 8 * A5_NR), _MM_HINT_T0);
    if (NV == 2) _mm_prefetch((const char*)(Bp + 8 * A5_NR + 16), _MM_HINT_T0);
#pragma GCC unroll 14
    for (int i = 0; i < ROWS; i++) {
      __m512 a = _mm512_set1_ps(KMAJ ? Ap[i] : Ap[i * ak]);
      c0[i] = _mm512_fmadd_ps(a, b0, c0[i]);
      if (NV == 2) c1[i] = _mm512_fmadd_ps(a, b1, c1[i]);
    }
    Ap += KMAJ ? ak : 1;
    Bp += A5_NR;
  }
  if (alpha != 1.f) {
    const __m512 va = _mm512_set1_ps(alpha);
#pragma GCC unroll 14
    for (int i = 0; i < ROWS; i++) {
      c0[i] = _mm512_mul_ps(va, c0[i]);
      if (NV == 2) c1[i] = _mm512_mul_ps(va, c1[i]);
    }
  }
  const __m512 vb = _mm512_set1_ps(beta);
  const bool nob = beta == 0.f;
#pragma GCC unroll 14
  for (int i = 0; i < ROWS; i++) {
    float* c = C + i * ldc;
    if (NV == 2) {
      __m512 v0 = c0[i], v1 = c1[i];
      if (!nob) {
        v0 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(c), v0);
        v1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(ml, c + 16), v1);
      }
      _mm512_storeu_ps(c, v0);
      _mm512_mask_storeu_ps(c + 16, ml, v1);
    } else {
      __m512 v0 = c0[i];
      if (!nob) v0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(ml, c), v0);
      _mm512_mask_storeu_ps(c, ml, v0);
    }
  }
}

template <bool KMAJ, int... I>
constexpr std::array<UkrFn, sizeof...(I)> make_avx512_edges(std::integer_sequence<int, I...>) {
  return {{ukr_avx512<I / 2 + 1, I % 2 + 1, KMAJ>...}};
}
const std::array<UkrFn, 2 * A5_MR> kAvx512EdgeI =
    make_avx512_edges<false>(std::make_integer_sequence<int, 2 * A5_MR>());
const std::array<UkrFn, 2 * A5_MR> kAvx512EdgeK =
    make_avx512_edges<true>(std::make_integer_sequence<int, 2 * A5_MR>());

// GCC 12's _mm512_undefined_ps() (used inside the unpack intrinsics) trips -Wmaybe-uninitialized.
#pragma GCC diagnostic push
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"
// In-register 16x16 transpose: r[i] (row i) -> r[j] (column j).
VK_TARGET("avx512f") inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  // r[4q + s] now holds, per 128-bit lane L, elements (row 4q..4q+3, col 4L + s')
  for (int i = 0; i < 4; i++) {
    t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xDD);
    t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xDD);
  }
  for (int i = 0; i < 4; i++) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
    r[i + 4] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0x88);
    r[i + 12] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0xDD);
  }
}

// B^T pack for NR = 32: dst[k * 32 + j] = src[j * ldb + k]
VK_TARGET("avx512f") void pack_bt_avx512(int kc, int nr, const float* src,
                                                       int64_t ldb, float* dst) {
  for (int h = 0; h < 2; h++) {
    const int j0 = h * 16;
    const int rows = std::max(0, std::min(16, nr - j0));
    float* d = dst + j0;
    if (rows == 0) {
      for (int k = 0; k < kc; k++) _mm512_store_ps(d + k * A5_NR, _mm512_setzero_ps());
      continue;
    }
    for (int k0 = 0; k0 < kc; k0 += 16) {
      const int kk = std::min(16, kc - k0);
      const __mmask16 m = (__mmask16)((1u << kk) - 1u);
      __m512 r[16];
      // The (i < rows) tests are folded per column block; rows is 16 except at the N edge.
      for (int i = 0; i < 16; i++)
        r[i] = i < rows ? _mm512_maskz_loadu_ps(m, src + (int64_t)(j0 + i) * ldb + k0)
                        : _mm512_setzero_ps();
      transpose16(r);
      for (int i = 0; i < kk; i++) _mm512_store_ps(d + (int64_t)(k0 + i) * A5_NR, r[i]);
    }
  }
}
#pragma GCC diagnostic pop
#endif  // VK_X86

// ---------------------------------------------------------------------------------------------
// Kernel sets and dispatch
// ---------------------------------------------------------------------------------------------
const KernelSet kPortable = {"portable", P_MR, P_NR, P_KC, P_NC, P_AS,
                             ukr_portable<false>, ukr_portable<true>, {nullptr, nullptr},
                             pack_rows<P_NR>, pack_cols<P_NR>, pack_rows<P_MR>};
#if VK_NEON
const KernelSet kNeon = {"neon", N_MR, N_NR, N_KC, N_NC, N_AS,
                         ukr_neon<false>, ukr_neon<true>, {nullptr, nullptr},
                         pack_rows<N_NR>, pack_cols<N_NR>, pack_rows<N_MR>};
#endif
#if VK_X86
const KernelSet kAvx2 = {"avx2", A2_MR, A2_NR, A2_KC, A2_NC, A2_AS,
                         ukr_avx2<false>, ukr_avx2<true>, {nullptr, nullptr},
                         pack_rows<A2_NR>, pack_cols<A2_NR>, pack_rows<A2_MR>};
const KernelSet kAvx512 = {"avx512", A5_MR, A5_NR, A5_KC, A5_NC, A5_AS,
                           ukr_avx512<A5_MR, 2, false>, ukr_avx512<A5_MR, 2, true>,
                           {kAvx512EdgeI.data(), kAvx512EdgeK.data()},
                           pack_rows<A5_NR>, pack_bt_avx512, pack_rows<A5_MR>};  // A^T: never packed (exact edges)
#endif

const KernelSet* select_kernels() {
  const char* env = std::getenv("VITKIT_ISA");
  int cap = 2;  // 2 avx512, 1 avx2, 0 portable: the highest allowed
  if (env) {
    if (!std::strcmp(env, "portable")) cap = 0;
    else if (!std::strcmp(env, "avx2")) cap = 1;
  }
#if VK_X86
  if (cap >= 2 && cpu_has_avx512f()) return &kAvx512;
  if (cap >= 1 && cpu_has_avx2_fma()) return &kAvx2;
#elif VK_NEON
  if (cap >= 1) return &kNeon;  // NEON is baseline on AArch64
#else
  (void)cap;
#endif
  return &kPortable;
}

const KernelSet& kernels() {
  static const KernelSet* ks = select_kernels();
  return *ks;
}

// ---------------------------------------------------------------------------------------------
// Per-thread aligned pack buffers
// ---------------------------------------------------------------------------------------------
struct Buf {
  float* p = nullptr;
  size_t n = 0;
  ~Buf() { aligned_free(p); }
  float* get(size_t need) {
    if (need > n) {
      aligned_free(p);
      p = nullptr;
      n = 0;
      size_t bytes = ((need * sizeof(float) + 63) / 64) * 64;
      p = static_cast<float*>(aligned_malloc(64, bytes));
      if (!p) throw std::bad_alloc();
      n = need;
    }
    return p;
  }
};
thread_local Buf tl_bufB, tl_bufA;

struct Problem {
  bool tA, tB;
  int M, N, K;
  float alpha, beta;
  const float* A;
  int64_t lda;
  const float* B;
  int64_t ldb;
  float* C;
  int64_t ldc;
  // epilogue, applied to each finished C region while it is in cache: C += bias (N), then GELU
  const float* bias = nullptr;
  int act = -1;  // -1 none, 0 GELU erf, 1 GELU tanh
};

// The epilogue on the finished C region rows [i0, i0 + m) x cols [j0, j0 + n).
void epilogue(const Problem& g, int i0, int m, int j0, int n) {
  if (!g.bias && g.act < 0) return;
  for (int i = 0; i < m; i++) {
    float* c = g.C + (int64_t)(i0 + i) * g.ldc + j0;
    if (g.bias) {
      const float* b = g.bias + j0;
      for (int j = 0; j < n; j++) c[j] += b[j];
    }
    if (g.act >= 0) gelu_forward(c, c, n, g.act);  // n < its grain: runs on this thread
  }
}

// C[m x n] = beta * C (beta == 0: zero without reading)
void scale_c(float* C, int64_t ldc, int m, int n, float beta) {
  for (int i = 0; i < m; i++) {
    float* c = C + i * ldc;
    if (beta == 0.f) std::fill(c, c + n, 0.f);
    else if (beta != 1.f)
      for (int j = 0; j < n; j++) c[j] *= beta;
  }
}

void pack_b_block(const KernelSet& ks, const Problem& g, int jc, int nc, int pc, int kc, float* Bp) {
  const int NR = ks.NR;
  for (int jr = 0; jr < nc; jr += NR) {
    const int nr = std::min(NR, nc - jr);
    float* d = Bp + (int64_t)jr * kc;  // panel jr/NR, NR * kc floats
    if (!g.tB)
      ks.pack_b_n(kc, nr, g.B + (int64_t)pc * g.ldb + jc + jr, g.ldb, d);
    else
      ks.pack_b_t(kc, nr, g.B + (int64_t)(jc + jr) * g.ldb + pc, g.ldb, d);
  }
}

// Makes the A operand of row panel [ic, ic + mr) x k [pc, pc + kc) and sets *ak, its stride:
// i-major (Ap[i * ak + k]) for non-transposed A, k-major (Ap[k * ak + i]) for transposed A.
// op(A) is read in place (ak = lda) - measured faster than packing, even for 4 KiB row strides -
// unless the panel is partial and the kernels lack exact edges: then it is packed and zero
// padded to MR rows (i-major with ak = AS, or k-major with ak = MR).
const float* a_panel(const KernelSet& ks, const Problem& g, int ic, int mr, int pc, int kc,
                     float* Ap, int64_t* ak) {
  if (mr == ks.MR || ks.edge[g.tA ? 1 : 0]) {
    *ak = g.lda;
    return g.tA ? g.A + (int64_t)pc * g.lda + ic : g.A + (int64_t)ic * g.lda + pc;
  }
  if (!g.tA) {
    const float* s = g.A + (int64_t)ic * g.lda + pc;
    for (int i = 0; i < mr; i++) std::memcpy(Ap + i * ks.AS, s + i * g.lda, sizeof(float) * kc);
    for (int i = mr; i < ks.MR; i++) std::fill(Ap + i * ks.AS, Ap + i * ks.AS + kc, 0.f);
    *ak = ks.AS;
    return Ap;
  }
  ks.pack_a_t(kc, mr, g.A + (int64_t)pc * g.lda + ic, g.lda, Ap);
  *ak = ks.MR;
  return Ap;
}

// Prefetches (into L2) part `q` of `nq` of the op(A) source rows [ic, ic + mr) x [pc, pc + kc).
inline void prefetch_a(const Problem& g, int ic, int mr, int pc, int kc, int q, int nq) {
  if (!g.tA) {
    const int lines = (kc + 15) / 16, total = mr * lines;
    const int b = total * q / nq, e = total * (q + 1) / nq;
    for (int t = b; t < e; t++) {
      const int i = t / lines, l = t % lines;
      prefetch(g.A + (int64_t)(ic + i) * g.lda + pc + l * 16);
    }
  } else {
    const int b = kc * q / nq, e = kc * (q + 1) / nq;
    for (int k = b; k < e; k++) {
      const float* r = g.A + (int64_t)(pc + k) * g.lda + ic;
      prefetch(r);
      prefetch(r + mr - 1);
    }
  }
}

// Blocking plan for a C block with `ncols` columns.
//   kcb: K block (balanced), nkb: number of K blocks, ncb: columns per packed B block.
//   kinner: loop order. When all of K for >= 8 NR panels of B fits the L2 budget (KC * NC
//   floats), the whole K extent of a B block is packed once and the K blocks run inside the
//   row-panel loop, so each row panel is finished (all K) before the next: its C tiles stay in
//   L1/L2 and the row panels are independent work items. Otherwise the classic Goto order: pack a
//   KC x NC block of B, sweep all row panels, next K block.
struct Plan {
  int kcb, nkb, ncb;
  bool kinner;  // also true when nkb == 1 (the two orders coincide)
};

Plan make_plan(const KernelSet& ks, int K, int ncols) {
  Plan p;
  const int NR = ks.NR;
  p.nkb = (K + ks.KC - 1) / ks.KC;
  p.kcb = (K + p.nkb - 1) / p.nkb;
  p.kcb = std::min(ks.KC, (p.kcb + 3) & ~3);
  const int64_t budget = (int64_t)ks.KC * ks.NC;
  const int nall = ((ncols + NR - 1) / NR) * NR;
  p.ncb = (int)std::min<int64_t>(nall, budget / K / NR * NR);
  p.kinner = p.nkb == 1 || p.ncb >= nall || p.ncb >= 8 * NR;
  if (p.nkb == 1 || !p.kinner) p.ncb = std::min(ks.NC, nall);
  return p;
}

// Dynamic schedule for the K-inner order: per B column block b, the row panels are split into
// nt contiguous ranges; thread t works through its own range, then steals from the others'
// (all through one atomic cursor per range). Absorbs late thread wake-ups and machine noise.
struct Sched {
  int nt, mt;
  std::atomic<int>* next;  // [block * nt + range]
  int begin(int r) const { return (int)((int64_t)mt * r / nt); }
  int end(int r) const { return (int)((int64_t)mt * (r + 1) / nt); }
};

// Computes the C block rows [m0, m1) x cols [n0, n1) on the calling thread (sched == null), or
// thread t's share of the whole problem under `sched` (K-inner plans only).
void gemm_block(const KernelSet& ks, const Problem& g, int m0, int m1, int n0, int n1,
                const Plan* plan = nullptr, Sched* sched = nullptr, int t = 0) {
  if (m0 >= m1 || n0 >= n1) return;
  const int MR = ks.MR, NR = ks.NR;
  if (g.K == 0) {
    scale_c(g.C + (int64_t)m0 * g.ldc + n0, g.ldc, m1 - m0, n1 - n0, g.beta);
    epilogue(g, m0, m1 - m0, n0, n1 - n0);
    return;
  }
  const Plan pl = plan ? *plan : make_plan(ks, g.K, n1 - n0);
  const int kcb = pl.kcb, ncb = pl.ncb;
  const bool kinner = pl.kinner;
  float* Bp = tl_bufB.get((size_t)((ncb + NR - 1) / NR * NR) * (kinner ? g.K : kcb) + 64);
  float* Ap = tl_bufA.get((size_t)MR * ks.AS + 64);
  alignas(64) float tile[16 * 64];
  const int kmaj = g.tA ? 1 : 0;
  const UkrFn full = g.tA ? ks.ukr_kmaj : ks.ukr_imaj;
  const UkrFn* edge = ks.edge[kmaj];

  // One row panel [ic, ic + mr) x one K block against the packed B block Bk (kc x nc at jc).
  // (icn, pcn, kcn) is the next panel to be packed: prefetched into L2 while this one runs.
  auto panel = [&](int jc, int nc, int ic, int mr, int pc, int kc, const float* Bk, int icn,
                   int mrn, int pcn, int kcn) {
    const float beta = pc == 0 ? g.beta : 1.f;
    int64_t ak;
    const float* Ak = a_panel(ks, g, ic, mr, pc, kc, Ap, &ak);
    const int nq = (nc + NR - 1) / NR;
    float* Crow = g.C + (int64_t)ic * g.ldc + jc;
    for (int jr = 0, q = 0; jr < nc; jr += NR, q++) {
      const int nr = std::min(NR, nc - jr);
      if (mrn > 0) prefetch_a(g, icn, mrn, pcn, kcn, q, nq);
      const float* Bpanel = Bk + (int64_t)jr * kc;
      float* Cij = Crow + jr;
      if (mr == MR && nr == NR) {
        full(kc, Ak, ak, Bpanel, Cij, g.ldc, g.alpha, beta, nr);
      } else if (edge) {
        edge[(mr - 1) * 2 + (nr > NR / 2)](kc, Ak, ak, Bpanel, Cij, g.ldc, g.alpha, beta, nr);
      } else {
        full(kc, Ak, ak, Bpanel, tile, NR, g.alpha, 0.f, NR);
        for (int i = 0; i < mr; i++) {
          float* c = Cij + i * g.ldc;
          const float* t = tile + i * NR;
          if (beta == 0.f)
            for (int j = 0; j < nr; j++) c[j] = t[j];
          else
            for (int j = 0; j < nr; j++) c[j] = t[j] + beta * c[j];
        }
      }
    }
  };

  const int mt = (m1 - m0 + MR - 1) / MR;
  for (int jc = n0, blk = 0; jc < n1; jc += ncb, blk++) {
    const int nc = std::min(ncb, n1 - jc);
    const int ncpad = ((nc + NR - 1) / NR) * NR;
    if (kinner) {
      bool packed = false;
      // all K blocks of row panel p (panel index within [m0, m1))
      auto row_panel = [&](int p) {
        if (!packed) {
          for (int pc = 0; pc < g.K; pc += kcb)
            pack_b_block(ks, g, jc, nc, pc, std::min(kcb, g.K - pc), Bp + (int64_t)pc * ncpad);
          packed = true;
        }
        const int ic = m0 + p * MR, mr = std::min(MR, m1 - ic);
        for (int pc = 0; pc < g.K; pc += kcb) {
          const int kc = std::min(kcb, g.K - pc);
          int icn = ic, pcn = pc + kcb;
          if (pcn >= g.K) icn += MR, pcn = 0;
          const int mrn = std::min(MR, m1 - icn), kcn = std::min(kcb, g.K - pcn);
          panel(jc, nc, ic, mr, pc, kc, Bp + (int64_t)pc * ncpad, icn, mrn, pcn, kcn);
        }
        epilogue(g, ic, mr, jc, nc);
      };
      if (!sched) {
        for (int p = 0; p < mt; p++) row_panel(p);
      } else {
        for (int r = 0; r < sched->nt; r++) {
          const int rr = (t + r) % sched->nt, e = sched->end(rr);
          std::atomic<int>& cur = sched->next[blk * sched->nt + rr];
          for (int p; (p = cur.fetch_add(1, std::memory_order_relaxed)) < e;) row_panel(p);
        }
      }
    } else {
      for (int pc = 0; pc < g.K; pc += kcb) {
        const int kc = std::min(kcb, g.K - pc);
        pack_b_block(ks, g, jc, nc, pc, kc, Bp);
        for (int ic = m0; ic < m1; ic += MR) {
          const int mr = std::min(MR, m1 - ic);
          panel(jc, nc, ic, mr, pc, kc, Bp, ic + MR, std::min(MR, m1 - ic - MR), pc, kc);
        }
      }
      epilogue(g, m0, m1 - m0, jc, nc);
    }
  }
}

Problem make_problem(bool transA, bool transB, int M, int N, int K, float alpha, const float* A,
                     int lda, const float* B, int ldb, float beta, float* C, int ldc) {
  return Problem{transA, transB, M, N, K, alpha, beta, A, lda, B, ldb, C, ldc};
}

}  // namespace

void sgemm_st(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda,
              const float* B, int ldb, float beta, float* C, int ldc) {
  if (M <= 0 || N <= 0) return;
  const Problem g = make_problem(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  gemm_block(kernels(), g, 0, M, 0, N);
}

namespace {
void sgemm_run(const Problem& g) {
  const int M = g.M, N = g.N, K = g.K;
  if (M <= 0 || N <= 0) return;
  const KernelSet& ks = kernels();
  const int MR = ks.MR, NR = ks.NR;
  const int mt = (M + MR - 1) / MR, ntl = (N + NR - 1) / NR;  // tiles
  // Threads: enough work per thread to beat the fork/join cost (~256K FMAs each).
  const double work = (double)M * N * std::max(K, 1);
  int nt = std::min<int>(get_threads(), (int)std::max(1.0, work / (256.0 * 1024)));
  nt = std::min(nt, mt * ntl);
  if (nt <= 1 || K == 0) {
    gemm_block(ks, g, 0, M, 0, N);
    return;
  }
  Plan plan = make_plan(ks, K, N);
  if (plan.kinner) {
    // Work items: (B column block, row panel). With few row panels, narrow the column blocks so
    // that there are >= 3 items per thread.
    const int want_blocks = (3 * nt + mt - 1) / mt;
    if (want_blocks > 1) {
      const int nb = std::min(ntl, std::max(want_blocks, (N + plan.ncb - 1) / plan.ncb));
      plan.ncb = std::min(plan.ncb, ((ntl + nb - 1) / nb) * NR);
    }
    const int nblk = (N + plan.ncb - 1) / plan.ncb;
    std::unique_ptr<std::atomic<int>[]> next(new std::atomic<int>[(size_t)nblk * nt]);
    Sched sched{nt, mt, next.get()};
    for (int b = 0; b < nblk; b++)
      for (int r = 0; r < nt; r++) next[(size_t)b * nt + r].store(sched.begin(r));
    parallel_run(nt, [&](int t, int) { gemm_block(ks, g, 0, M, 0, N, &plan, &sched, t); });
    return;
  }
  // Pick the tm x tn grid (tm * tn == nt) with the best cost: the slowest thread's tile count
  // plus the per-thread packing overhead (re-packing B per M split, A per N split).
  int best_tm = nt, best_tn = 1;
  double best_cost = 1e300;
  for (int tm = 1; tm <= nt; tm++) {
    if (nt % tm) continue;
    const int tn = nt / tm;
    if (tm > mt || tn > ntl) continue;
    const double rows = (double)((mt + tm - 1) / tm) * MR, cols = (double)((ntl + tn - 1) / tn) * NR;
    const double kk = std::max(K, 1);
    const double compute = rows * cols * kk;
    const double pack = cols * kk * 4.0 + rows * kk * std::ceil(cols / ks.NC) * 1.0;
    const double cost = compute + pack;
    if (cost < best_cost) {
      best_cost = cost;
      best_tm = tm;
      best_tn = tn;
    }
  }
  const int tm = best_tm, tn = best_tn;
  parallel_run(nt, [&](int t, int ntr) {
    if (ntr != nt) {  // should not happen; fall back to a serial split of the same grid
      if (t == 0) gemm_block(ks, g, 0, M, 0, N);
      return;
    }
    const int ti = t / tn, tj = t % tn;
    const int m0 = std::min(M, (int)((int64_t)mt * ti / tm) * MR);
    const int m1 = std::min(M, (int)((int64_t)mt * (ti + 1) / tm) * MR);
    const int n0 = std::min(N, (int)((int64_t)ntl * tj / tn) * NR);
    const int n1 = std::min(N, (int)((int64_t)ntl * (tj + 1) / tn) * NR);
    gemm_block(ks, g, m0, m1, n0, n1);
  });
}
}  // namespace

void sgemm(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda,
           const float* B, int ldb, float beta, float* C, int ldc) {
  sgemm_run(make_problem(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc));
}

void linear_forward(float* out, const float* inp, const float* weight, const float* bias, int M, int N, int K,
                    bool accumulate, int act) {
  Problem g = make_problem(false, true, M, N, K, 1.f, inp, K, weight, K, accumulate ? 1.f : 0.f, out, N);
  g.bias = bias;
  g.act = act;
  sgemm_run(g);
}

const char* gemm_isa() { return kernels().name; }

}  // namespace vk
