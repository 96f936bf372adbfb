// Multi-head self-attention on timm's fused qkv layout, one task per (batch, head).
// Per task: gather q, k, v (N, HD) into contiguous scratch, S = scale * q k^T (N, N),
// P = softmax(S), o = P v, scatter o into out (B, N, D) at columns h*HD.
#include <vector>

#include "kernels/kernels.h"
#include "threadpool.h"

namespace vk {

void softmax_row(float* out, const float* inp, int C);  // softmax.cc

namespace {
// copy the (N, HD) slice at column offset `off` of a (N, ld) matrix into dst (N, HD)
void gather(float* dst, const float* src, int N, int HD, int ld, int off) {
  for (int n = 0; n < N; n++)
    for (int d = 0; d < HD; d++) dst[(int64_t)n * HD + d] = src[(int64_t)n * ld + off + d];
}
}  // namespace

void attention_forward(float* out, float* probs, const float* qkv, int B, int N, int NH, int HD,
                       float scale) {
  const int D = NH * HD, D3 = 3 * D;
  parallel_for((int64_t)B * NH, [&](int64_t t0, int64_t t1) {
    std::vector<float> q((size_t)N * HD), k((size_t)N * HD), v((size_t)N * HD), o((size_t)N * HD);
    std::vector<float> s((size_t)N * N);
    for (int64_t t = t0; t < t1; t++) {
      const int b = (int)(t / NH), h = (int)(t % NH);
      const float* base = qkv + (int64_t)b * N * D3;
      gather(q.data(), base, N, HD, D3, h * HD);
      gather(k.data(), base, N, HD, D3, D + h * HD);
      gather(v.data(), base, N, HD, D3, 2 * D + h * HD);
      sgemm_st(false, true, N, N, HD, scale, q.data(), HD, k.data(), HD, 0.f, s.data(), N);
      float* p = probs ? probs + t * (int64_t)N * N : s.data();
      for (int i = 0; i < N; i++) softmax_row(p + (int64_t)i * N, s.data() + (int64_t)i * N, N);
      sgemm_st(false, false, N, HD, N, 1.f, p, N, v.data(), HD, 0.f, o.data(), HD);
      float* ob = out + (int64_t)b * N * D + h * HD;
      for (int n = 0; n < N; n++)
        for (int d = 0; d < HD; d++) ob[(int64_t)n * D + d] = o[(int64_t)n * HD + d];
    }
  });
}

void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* probs, int B,
                        int N, int NH, int HD, float scale) {
  const int D = NH * HD, D3 = 3 * D;
  parallel_for((int64_t)B * NH, [&](int64_t t0, int64_t t1) {
    std::vector<float> q((size_t)N * HD), k((size_t)N * HD), v((size_t)N * HD), dO((size_t)N * HD);
    std::vector<float> dq((size_t)N * HD), dk((size_t)N * HD), dv((size_t)N * HD);
    std::vector<float> dp((size_t)N * N);
    for (int64_t t = t0; t < t1; t++) {
      const int b = (int)(t / NH), h = (int)(t % NH);
      const float* base = qkv + (int64_t)b * N * D3;
      gather(q.data(), base, N, HD, D3, h * HD);
      gather(k.data(), base, N, HD, D3, D + h * HD);
      gather(v.data(), base, N, HD, D3, 2 * D + h * HD);
      gather(dO.data(), dout + (int64_t)b * N * D, N, HD, D, h * HD);
      const float* p = probs + t * (int64_t)N * N;  // (N, N)
      // dv = p^T dO ; dp = dO v^T
      sgemm_st(true, false, N, HD, N, 1.f, p, N, dO.data(), HD, 0.f, dv.data(), HD);
      sgemm_st(false, true, N, N, HD, 1.f, dO.data(), HD, v.data(), HD, 0.f, dp.data(), N);
      // ds = p * (dp - rowsum(dp * p)), stored in dp
      for (int i = 0; i < N; i++) {
        float* dr = dp.data() + (int64_t)i * N;
        const float* pr = p + (int64_t)i * N;
        double dot = 0;
        for (int j = 0; j < N; j++) dot += (double)dr[j] * pr[j];
        for (int j = 0; j < N; j++) dr[j] = pr[j] * (dr[j] - (float)dot);
      }
      // dq = scale * ds k ; dk = scale * ds^T q
      sgemm_st(false, false, N, HD, N, scale, dp.data(), N, k.data(), HD, 0.f, dq.data(), HD);
      sgemm_st(true, false, N, HD, N, scale, dp.data(), N, q.data(), HD, 0.f, dk.data(), HD);
      float* db = dqkv + (int64_t)b * N * D3;
      for (int n = 0; n < N; n++)
        for (int d = 0; d < HD; d++) {
          db[(int64_t)n * D3 + h * HD + d] = dq[(int64_t)n * HD + d];
          db[(int64_t)n * D3 + D + h * HD + d] = dk[(int64_t)n * HD + d];
          db[(int64_t)n * D3 + 2 * D + h * HD + d] = dv[(int64_t)n * HD + d];
        }
    }
  });
}

}  // namespace vk
