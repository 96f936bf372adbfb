// Multi-head self-attention on timm's fused qkv layout, without gather/scatter copies: q, k, v of
// head h are read in place from qkv (row stride 3D, column offset h*HD) by the strided sgemm_st,
// and each head's output is written in place into out (row stride D).
// Forward task = (batch, head, block of query rows):
//   S = scale q k^T (rows x N)  -> probs slice when requested, else per-thread scratch
//   P = softmax(S) in place, row by row (vectorized, softmax.cc)
//   out[:, h*HD : (h+1)*HD] = P v
// When B*NH does not spread evenly over the threads the query rows are split as well.
// Causal: a block of query rows [i0, i0 + m) only sees keys [0, i0 + m): S is computed over those
// columns, each row's softmax over its keys j <= i and the rest of the row set to 0; P v reads
// only keys j <= i (a masked value is never multiplied, so a row never depends on later tokens).
#include <algorithm>
#include <vector>

#include "kernels/kernels.h"
#include "threadpool.h"

namespace vk {

void softmax_row(float* out, const float* inp, int C);  // softmax.cc (out may equal inp)

void attention_forward(float* out, float* probs, const float* qkv, int B, int N, int NH, int HD,
                       float scale, bool causal) {
  const int D = NH * HD, D3 = 3 * D;
  const int64_t heads = (int64_t)B * NH;
  if (heads <= 0 || N <= 0) return;
  if (HD <= 0 && !probs) return;  // out (B, N, 0) is empty and no probs are asked for: nothing to do
  const int nt = get_threads();
  // row blocks per head: 1 when the heads alone balance the threads, else enough blocks for about
  // 4 tasks per thread, each of at least 16 query rows
  int rc = 1;
  if (nt > 1 && heads % nt != 0 && heads < 4 * nt) {
    rc = (int)((4 * nt + heads - 1) / heads);
    rc = std::max(1, std::min(rc, N / 16));
  }
  const int rows = (N + rc - 1) / rc;
  parallel_for(heads * rc, [&](int64_t t0, int64_t t1) {
    thread_local std::vector<float> scratch;
    if (!probs && scratch.size() < (size_t)rows * N) scratch.resize((size_t)rows * N);
    for (int64_t t = t0; t < t1; t++) {
      const int64_t bh = t / rc;
      const int i0 = (int)(t % rc) * rows, m = std::min(rows, N - i0);
      if (m <= 0) continue;
      const int b = (int)(bh / NH), h = (int)(bh % NH);
      const float* base = qkv + (int64_t)b * N * D3;
      const float* q = base + (int64_t)i0 * D3 + h * HD;
      const float* k = base + D + h * HD;
      const float* v = base + 2 * D + h * HD;
      float* s = probs ? probs + bh * N * N + (int64_t)i0 * N : scratch.data();  // (m, N)
      const int nk = causal ? i0 + m : N;  // keys this block sees
      sgemm_st(false, true, m, nk, HD, scale, q, D3, k, D3, 0.f, s, N);
      for (int i = 0; i < m; i++) {
        float* row = s + (int64_t)i * N;
        const int len = causal ? i0 + i + 1 : N;
        softmax_row(row, row, len);
        std::fill(row + len, row + N, 0.f);
      }
      float* o = out + ((int64_t)b * N + i0) * D + h * HD;  // (m, HD), row stride D
      if (!causal) {
        sgemm_st(false, false, m, HD, N, 1.f, s, N, v, D3, 0.f, o, D);
      } else {
        // keys [0, i0) are visible to every row of the block; the diagonal block [i0, i0 + m) is
        // triangular, done row by row so that no masked value is ever multiplied (0 * Inf = NaN)
        sgemm_st(false, false, m, HD, i0, 1.f, s, N, v, D3, 0.f, o, D);
        for (int i = 0; i < m; i++) {
          const float* pr = s + (int64_t)i * N;
          float* orow = o + (int64_t)i * D;
          for (int j = i0; j <= i0 + i; j++) {
            const float pj = pr[j];
            const float* vr = v + (int64_t)j * D3;
            for (int d = 0; d < HD; d++) orow[d] += pj * vr[d];
          }
        }
      }
    }
  });
}

void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* probs, int B,
                        int N, int NH, int HD, float scale, bool causal) {
  const int D = NH * HD, D3 = 3 * D;
  parallel_for((int64_t)B * NH, [&](int64_t t0, int64_t t1) {
    thread_local std::vector<float> dpbuf;
    if (dpbuf.size() < (size_t)N * N) dpbuf.resize((size_t)N * N);
    float* dp = dpbuf.data();
    for (int64_t t = t0; t < t1; t++) {
      const int b = (int)(t / NH), h = (int)(t % NH);
      const float* base = qkv + (int64_t)b * N * D3;
      const float* q = base + h * HD;
      const float* k = base + D + h * HD;
      const float* v = base + 2 * D + h * HD;
      const float* dO = dout + (int64_t)b * N * D + h * HD;  // (N, HD), row stride D
      float* db = dqkv + (int64_t)b * N * D3;
      float* dq = db + h * HD;
      float* dk = db + D + h * HD;
      float* dv = db + 2 * D + h * HD;
      const float* p = probs + t * (int64_t)N * N;  // (N, N)
      // dv = p^T dO ; dp = dO v^T
      sgemm_st(true, false, N, HD, N, 1.f, p, N, dO, D, 0.f, dv, D3);
      sgemm_st(false, true, N, N, HD, 1.f, dO, D, v, D3, 0.f, dp, N);
      // ds = p * (dp - rowsum(dp * p)), stored in dp; causal: 0 for the masked j > i
      for (int i = 0; i < N; i++) {
        float* dr = dp + (int64_t)i * N;
        const float* pr = p + (int64_t)i * N;
        const int len = causal ? i + 1 : N;
        double dot = 0;
        for (int j = 0; j < len; j++) dot += (double)dr[j] * pr[j];
        const float fd = (float)dot;
        for (int j = 0; j < len; j++) dr[j] = pr[j] * (dr[j] - fd);
        for (int j = len; j < N; j++) dr[j] = 0.f;
      }
      // dq = scale * ds k ; dk = scale * ds^T q
      sgemm_st(false, false, N, HD, N, scale, dp, N, k, D3, 0.f, dq, D3);
      sgemm_st(true, false, N, HD, N, scale, dp, N, q, D3, 0.f, dk, D3);
    }
  });
}

}  // namespace vk
