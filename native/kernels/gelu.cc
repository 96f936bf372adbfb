// GELU: exact x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), or the tanh approximation
// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as torch.nn.functional.gelu(approximate=...).
#include <cmath>

#include "kernels/kernels.h"
#include "threadpool.h"

namespace vk {

static constexpr float kInvSqrt2 = 0.70710678118654752f;
static constexpr float kInvSqrt2Pi = 0.39894228040143268f;
static constexpr float kSqrt2OverPi = 0.79788456080286536f;
static constexpr float kTanhC = 0.044715f;

void gelu_forward(float* out, const float* inp, int64_t n, int approx) {
  parallel_for(n, [&](int64_t b, int64_t e) {
    if (approx == 0) {
      for (int64_t i = b; i < e; i++) {
        const float x = inp[i];
        out[i] = 0.5f * x * (1.f + std::erf(x * kInvSqrt2));
      }
    } else {
      for (int64_t i = b; i < e; i++) {
        const float x = inp[i];
        out[i] = 0.5f * x * (1.f + std::tanh(kSqrt2OverPi * (x + kTanhC * x * x * x)));
      }
    }
  }, 4096);
}

void gelu_backward(float* dinp, const float* inp, const float* dout, int64_t n, int approx) {
  parallel_for(n, [&](int64_t b, int64_t e) {
    if (approx == 0) {
      for (int64_t i = b; i < e; i++) {
        const float x = inp[i];
        const float cdf = 0.5f * (1.f + std::erf(x * kInvSqrt2));
        const float pdf = std::exp(-0.5f * x * x) * kInvSqrt2Pi;
        dinp[i] = dout[i] * (cdf + x * pdf);
      }
    } else {
      for (int64_t i = b; i < e; i++) {
        const float x = inp[i];
        const float u = kSqrt2OverPi * (x + kTanhC * x * x * x);
        const float t = std::tanh(u);
        const float du = kSqrt2OverPi * (1.f + 3.f * kTanhC * x * x);
        dinp[i] = dout[i] * (0.5f * (1.f + t) + 0.5f * x * (1.f - t * t) * du);
      }
    }
  }, 4096);
}

}  // namespace vk
