// Node-API glue: the thin native surface. The backend is public, so every entry validates its
// own arguments before touching memory (src/backend/native.ts turns a thrown error into a
// VitkitError): every integer is a non-negative safe integer that fits the kernel's type (never
// truncated), every size product is computed in 64 bits with an overflow check, and every
// buffer's length covers what its dimensions (and leading dimensions) address. A C++ exception
// from a kernel (std::bad_alloc from a scratch buffer, on any pool thread) becomes a JS error.
#include <napi.h>

#include <climits>
#include <cmath>
#include <new>
#include <string>

#include "kernels/kernels.h"
#include "threadpool.h"

namespace {

using Napi::CallbackInfo;
using Napi::Value;

constexpr int64_t kMaxSafe = (int64_t(1) << 53) - 1;  // Number.MAX_SAFE_INTEGER

std::string num(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  if (d == std::floor(d) && std::fabs(d) < 1e18) return std::to_string((long long)d);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  return buf;
}

std::string received(const Napi::Value& v) {
  if (v.IsNumber()) return num(v.As<Napi::Number>().DoubleValue());
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsBoolean()) return v.As<Napi::Boolean>().Value() ? "true" : "false";
  if (v.IsString()) return "a string";
  if (v.IsTypedArray()) return "a typed array of another type";
  if (v.IsArray()) return "an Array";
  return "an object";
}

struct Args {
  const CallbackInfo& info;
  const char* fn;

  [[noreturn]] void fail(size_t i, const char* name, const std::string& msg) const {
    throw Napi::RangeError::New(info.Env(),
                                std::string(fn) + ": argument " + std::to_string(i) + " (" + name + ") " + msg);
  }
  // a Float32Array holding at least `need` elements (or null / undefined when nullable)
  float* f32(size_t i, const char* name, int64_t need, bool nullable = false) const {
    Napi::Value v = info[i];
    if (nullable && (v.IsNull() || v.IsUndefined())) return nullptr;
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      fail(i, name, std::string("must be a Float32Array") + (nullable ? " or null" : "") + ", received " + received(v));
    auto a = v.As<Napi::Float32Array>();
    if ((int64_t)a.ElementLength() < need)
      throw Napi::RangeError::New(info.Env(), std::string(fn) + ": argument " + std::to_string(i) + " has " +
                                                  std::to_string(a.ElementLength()) + " elements, expected at least " +
                                                  std::to_string(need) + " for " + name);
    return a.Data();
  }
  // a non-negative integer <= max (a safe integer; never truncated)
  int64_t count(size_t i, const char* name, int64_t max = kMaxSafe) const {
    Napi::Value v = info[i];
    if (!v.IsNumber()) fail(i, name, "must be a number, received " + received(v));
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= 0 && d <= (double)max && d == std::floor(d)))
      fail(i, name, "must be an integer in [0, " + std::to_string(max) + "], received " + num(d));
    return (int64_t)d;
  }
  int dim(size_t i, const char* name) const { return (int)count(i, name, INT_MAX); }
  float f(size_t i, const char* name) const {
    if (!info[i].IsNumber()) fail(i, name, "must be a number, received " + received(info[i]));
    return info[i].As<Napi::Number>().FloatValue();
  }
  bool b(size_t i, const char* name, bool optional = false) const {
    Napi::Value v = info[i];
    if (optional && v.IsUndefined()) return false;
    if (!v.IsBoolean()) fail(i, name, "must be a boolean, received " + received(v));
    return v.As<Napi::Boolean>().Value();
  }
  // a * b, or a thrown error naming the product when it does not fit in 53 bits
  int64_t mul(int64_t a, int64_t b, const char* what) const {
    if (a != 0 && b > kMaxSafe / a)
      throw Napi::RangeError::New(info.Env(), std::string(fn) + ": " + what + " = " + std::to_string(a) + " x " +
                                                  std::to_string(b) + " overflows (more than 2^53 elements)");
    return a * b;
  }
  int64_t mul(std::initializer_list<int64_t> xs, const char* what) const {
    int64_t p = 1;
    for (int64_t x : xs) p = mul(p, x, what);
    return p;
  }
  // elements a (rows, cols) matrix with row stride ld addresses: (rows - 1) * ld + cols
  int64_t span(int64_t rows, int64_t cols, int64_t ld, const char* what) const {
    if (rows == 0 || cols == 0) return 0;
    const int64_t s = mul(rows - 1, ld, what);
    if (s > kMaxSafe - cols)
      throw Napi::RangeError::New(info.Env(), std::string(fn) + ": " + what + " overflows (more than 2^53 elements)");
    return s + cols;
  }
  // the product must also fit the kernel's int (e.g. a row width)
  int fits_int(int64_t v, const char* what) const {
    if (v > INT_MAX)
      throw Napi::RangeError::New(info.Env(), std::string(fn) + ": " + what + " = " + std::to_string(v) +
                                                  " exceeds " + std::to_string(INT_MAX));
    return (int)v;
  }
  void arity(size_t n) const {
    if (info.Length() < n)
      throw Napi::TypeError::New(info.Env(), std::string(fn) + ": expected " + std::to_string(n) + " arguments, received " +
                                                 std::to_string(info.Length()));
  }
};

// Runs an entry; C++ exceptions from the kernels become JS errors naming the op.
template <typename F>
Value guarded(const CallbackInfo& info, const char* fn, size_t nargs, F&& body) {
  Args a{info, fn};
  a.arity(nargs);
  try {
    body(a);
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw Napi::RangeError::New(info.Env(), std::string(fn) + ": out of memory (a native allocation failed)");
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), std::string(fn) + ": native error: " + e.what());
  } catch (...) {
    throw Napi::Error::New(info.Env(), std::string(fn) + ": unknown native error");
  }
  return info.Env().Undefined();
}

Value SetThreads(const CallbackInfo& info) {
  return guarded(info, "setThreads", 1, [&](Args& a) {
    vk::set_threads((int)std::max<int64_t>(1, a.count(0, "n", 1 << 20)));  // clamped to [1, kMaxThreads]
  });
}
Value GetThreads(const CallbackInfo& info) { return Napi::Number::New(info.Env(), vk::get_threads()); }
Value GemmIsa(const CallbackInfo& info) { return Napi::String::New(info.Env(), vk::gemm_isa()); }
// fmaPeak(threads, seconds) -> GFLOP/s
Value FmaPeak(const CallbackInfo& info) {
  double r = 0;
  guarded(info, "fmaPeak", 2, [&](Args& a) {
    const int t = (int)a.count(0, "threads", vk::kMaxThreads);
    const float s = a.f(1, "seconds");
    if (!(s >= 0 && s <= 60)) a.fail(1, "seconds", "must be in [0, 60], received " + num(s));
    r = vk::fma_peak_gflops(std::max(1, t), s);
  });
  return Napi::Number::New(info.Env(), r);
}

// gemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
Value Gemm(const CallbackInfo& info) {
  return guarded(info, "gemm", 13, [&](Args& a) {
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
  });
}

// linearForward(out, inp, weight, bias|null, M, N, K, accumulate, act)  act: -1 none, 0 gelu, 1 gelu_tanh
Value LinearForward(const CallbackInfo& info) {
  return guarded(info, "linearForward", 9, [&](Args& a) {
    const int M = a.dim(4, "M"), N = a.dim(5, "N"), K = a.dim(6, "K");
    const bool acc = a.b(7, "accumulate");
    if (!info[8].IsNumber()) a.fail(8, "act", "must be a number, received " + received(info[8]));
    const double actd = info[8].As<Napi::Number>().DoubleValue();
    if (!(actd == -1 || actd == 0 || actd == 1) || (acc && actd != -1))
      a.fail(8, "act", "must be -1 (none), 0 (gelu) or 1 (gelu_tanh), and -1 with accumulate; received " + num(actd));
    float* out = a.f32(0, "out (M, N)", a.mul(M, N, "M x N"));
    const float* inp = a.f32(1, "inp (M, K)", a.mul(M, K, "M x K"));
    const float* w = a.f32(2, "weight (N, K)", a.mul(N, K, "N x K"));
    const float* bias = a.f32(3, "bias (N)", N, true);
    vk::linear_forward(out, inp, w, bias, M, N, K, acc, (int)actd);
  });
}
// layernormForward(out, mean|null, rstd|null, inp, weight, bias, R, C, eps)
Value LayerNormForward(const CallbackInfo& info) {
  return guarded(info, "layernormForward", 9, [&](Args& a) {
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
  });
}
// layernormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, R, C)
Value LayerNormBackward(const CallbackInfo& info) {
  return guarded(info, "layernormBackward", 10, [&](Args& a) {
    const int64_t R = a.count(8, "R");
    const int C = a.dim(9, "C");
    const int64_t RC = a.mul(R, C, "R x C");
    vk::layernorm_backward(a.f32(0, "dinp (R, C)", RC), a.f32(1, "dweight (C)", C), a.f32(2, "dbias (C)", C),
                           a.f32(3, "dout (R, C)", RC), a.f32(4, "inp (R, C)", RC), a.f32(5, "weight (C)", C),
                           a.f32(6, "mean (R)", R), a.f32(7, "rstd (R)", R), R, C);
  });
}
int approx_arg(Args& a, size_t i) {
  const int64_t v = a.count(i, "approx", 1);
  return (int)v;
}
// geluForward(out, inp, n, approx)
Value GeluForward(const CallbackInfo& info) {
  return guarded(info, "geluForward", 4, [&](Args& a) {
    const int64_t n = a.count(2, "n");
    const int approx = approx_arg(a, 3);
    vk::gelu_forward(a.f32(0, "out (n)", n), a.f32(1, "inp (n)", n), n, approx);
  });
}
// geluBackward(dinp, inp, dout, n, approx)
Value GeluBackward(const CallbackInfo& info) {
  return guarded(info, "geluBackward", 5, [&](Args& a) {
    const int64_t n = a.count(3, "n");
    const int approx = approx_arg(a, 4);
    vk::gelu_backward(a.f32(0, "dinp (n)", n), a.f32(1, "inp (n)", n), a.f32(2, "dout (n)", n), n, approx);
  });
}
// softmaxForward(out, inp, R, C)
Value SoftmaxForward(const CallbackInfo& info) {
  return guarded(info, "softmaxForward", 4, [&](Args& a) {
    const int64_t R = a.count(2, "R");
    const int C = a.dim(3, "C");
    const int64_t RC = a.mul(R, C, "R x C");
    vk::softmax_forward(a.f32(0, "out (R, C)", RC), a.f32(1, "inp (R, C)", RC), R, C);
  });
}
// softmaxBackward(dinp, out, dout, R, C)
Value SoftmaxBackward(const CallbackInfo& info) {
  return guarded(info, "softmaxBackward", 5, [&](Args& a) {
    const int64_t R = a.count(3, "R");
    const int C = a.dim(4, "C");
    const int64_t RC = a.mul(R, C, "R x C");
    vk::softmax_backward(a.f32(0, "dinp (R, C)", RC), a.f32(1, "out (R, C)", RC), a.f32(2, "dout (R, C)", RC), R, C);
  });
}
struct AttnDims {
  int B, N, NH, HD;
  int64_t BND, BNNN;
};
AttnDims attn_dims(Args& a, size_t i0) {
  AttnDims d{a.dim(i0, "B"), a.dim(i0 + 1, "N"), a.dim(i0 + 2, "NH"), a.dim(i0 + 3, "HD"), 0, 0};
  // the kernels index rows of width 3 * NH * HD with int
  a.fits_int(a.mul({3, d.NH, d.HD}, "3 x NH x HD"), "3 x NH x HD");
  d.BND = a.mul({d.B, d.N, d.NH, d.HD}, "B x N x NH x HD");
  a.mul(d.BND, 3, "B x N x 3D");
  d.BNNN = a.mul({d.B, d.NH, d.N, d.N}, "B x NH x N x N");
  return d;
}
// attentionForward(out, probs|null, qkv, B, N, NH, HD, scale, causal?)
Value AttentionForward(const CallbackInfo& info) {
  return guarded(info, "attentionForward", 8, [&](Args& a) {
    const AttnDims d = attn_dims(a, 3);
    const float scale = a.f(7, "scale");
    const bool causal = a.b(8, "causal", true);
    float* out = a.f32(0, "out (B, N, D)", d.BND);
    float* probs = a.f32(1, "probs (B, NH, N, N)", d.BNNN, true);
    const float* qkv = a.f32(2, "qkv (B, N, 3D)", 3 * d.BND);
    vk::attention_forward(out, probs, qkv, d.B, d.N, d.NH, d.HD, scale, causal);
  });
}
// attentionBackward(dqkv, dout, qkv, probs, B, N, NH, HD, scale, causal?)
Value AttentionBackward(const CallbackInfo& info) {
  return guarded(info, "attentionBackward", 9, [&](Args& a) {
    const AttnDims d = attn_dims(a, 4);
    const float scale = a.f(8, "scale");
    const bool causal = a.b(9, "causal", true);
    vk::attention_backward(a.f32(0, "dqkv (B, N, 3D)", 3 * d.BND), a.f32(1, "dout (B, N, D)", d.BND),
                           a.f32(2, "qkv (B, N, 3D)", 3 * d.BND), a.f32(3, "probs (B, NH, N, N)", d.BNNN), d.B, d.N,
                           d.NH, d.HD, scale, causal);
  });
}
struct PatchDims {
  int B, C, H, W, P;
  int64_t n;
};
PatchDims patch_dims(Args& a) {
  PatchDims d{a.dim(2, "B"), a.dim(3, "C"), a.dim(4, "H"), a.dim(5, "W"), a.dim(6, "P"), 0};
  if (d.P <= 0 || d.H % d.P || d.W % d.P)
    a.fail(6, "P", "must be a positive divisor of H = " + std::to_string(d.H) + " and W = " + std::to_string(d.W) +
                       ", received " + std::to_string(d.P));
  a.fits_int(a.mul({d.C, d.P, d.P}, "C x P x P"), "C x P x P");
  d.n = a.mul({d.B, d.C, d.H, d.W}, "B x C x H x W");
  return d;
}
// im2colPatches(cols, inp, B, C, H, W, P)
Value Im2colPatches(const CallbackInfo& info) {
  return guarded(info, "im2colPatches", 7, [&](Args& a) {
    const PatchDims d = patch_dims(a);
    vk::im2col_patches(a.f32(0, "cols (B*GH*GW, C*P*P)", d.n), a.f32(1, "inp (B, C, H, W)", d.n), d.B, d.C, d.H, d.W,
                       d.P);
  });
}
// col2imPatches(dinp, dcols, B, C, H, W, P)
Value Col2imPatches(const CallbackInfo& info) {
  return guarded(info, "col2imPatches", 7, [&](Args& a) {
    const PatchDims d = patch_dims(a);
    vk::col2im_patches(a.f32(0, "dinp (B, C, H, W)", d.n), a.f32(1, "dcols (B*GH*GW, C*P*P)", d.n), d.B, d.C, d.H,
                       d.W, d.P);
  });
}
// add(out, a, b, n)
Value Add(const CallbackInfo& info) {
  return guarded(info, "add", 4, [&](Args& a) {
    const int64_t n = a.count(3, "n");
    vk::add_forward(a.f32(0, "out (n)", n), a.f32(1, "a (n)", n), a.f32(2, "b (n)", n), n);
  });
}
// biasAdd(out, bias, R, C)
Value BiasAdd(const CallbackInfo& info) {
  return guarded(info, "biasAdd", 4, [&](Args& a) {
    const int64_t R = a.count(2, "R");
    const int C = a.dim(3, "C");
    vk::bias_add(a.f32(0, "out (R, C)", a.mul(R, C, "R x C")), a.f32(1, "bias (C)", C), R, C);
  });
}
// biasBackward(dbias, dout, R, C)
Value BiasBackward(const CallbackInfo& info) {
  return guarded(info, "biasBackward", 4, [&](Args& a) {
    const int64_t R = a.count(2, "R");
    const int C = a.dim(3, "C");
    vk::bias_backward(a.f32(0, "dbias (C)", C), a.f32(1, "dout (R, C)", a.mul(R, C, "R x C")), R, C);
  });
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto set = [&](const char* name, Napi::Function::Callback fn) {
    exports.Set(name, Napi::Function::New(env, fn, name));
  };
  set("setThreads", SetThreads);
  set("getThreads", GetThreads);
  set("gemmIsa", GemmIsa);
  set("fmaPeak", FmaPeak);
  set("gemm", Gemm);
  set("linearForward", LinearForward);
  set("layernormForward", LayerNormForward);
  set("layernormBackward", LayerNormBackward);
  set("geluForward", GeluForward);
  set("geluBackward", GeluBackward);
  set("softmaxForward", SoftmaxForward);
  set("softmaxBackward", SoftmaxBackward);
  set("attentionForward", AttentionForward);
  set("attentionBackward", AttentionBackward);
  set("im2colPatches", Im2colPatches);
  set("col2imPatches", Col2imPatches);
  set("add", Add);
  set("biasAdd", BiasAdd);
  set("biasBackward", BiasBackward);
  return exports;
}

}  // namespace

NODE_API_MODULE(vitkit, Init)
