// Node-API glue: the thin native surface. The backend is public, so every entry validates its
// own arguments before touching memory (native/entries.h, shared with the libFuzzer harness in
// fuzz/native; src/backend/native.ts turns a thrown error into a VitkitError): every integer is a non-negative safe integer that fits the kernel's type (never
// truncated), every size product is computed in 64 bits with an overflow check, and every
// buffer's length covers what its dimensions (and leading dimensions) address. A C++ exception
// from a kernel (std::bad_alloc from a scratch buffer, on any pool thread) becomes a JS error.
#include <napi.h>

#include <climits>
#include <cmath>
#include <cstdio>
#include <new>
#include <string>
#if defined(_WIN32)
#include <io.h>  // _dup, _dup2, _fileno, _close
#define VK_DUP _dup
#define VK_DUP2 _dup2
#define VK_FILENO _fileno
#define VK_CLOSE _close
#else
#include <unistd.h>  // dup, dup2, close
#define VK_DUP dup
#define VK_DUP2 dup2
#define VK_FILENO fileno
#define VK_CLOSE close
#endif

#include "entries.h"  // validation + kernel call of each entry, shared with fuzz/native
#include "kernels/kernels.h"
#include "threadpool.h"

namespace {

using Napi::CallbackInfo;
using Napi::Value;

using vk::entry::num;

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

// The arguments of one call, read from N-API for the entries of entries.h.
struct Args : vk::entry::ArgChecks<Args> {
  const CallbackInfo& info;
  Args(const CallbackInfo& i, const char* f) : ArgChecks(f), info(i) {}

  [[noreturn]] void fail(size_t i, const char* name, const std::string& msg) const {
    throw Napi::RangeError::New(info.Env(),
                                std::string(fn) + ": argument " + std::to_string(i) + " (" + name + ") " + msg);
  }
  [[noreturn]] void reject(const std::string& msg) const { throw Napi::RangeError::New(info.Env(), msg); }
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
  double number(size_t i, const char* name) const {
    if (!info[i].IsNumber()) fail(i, name, "must be a number, received " + received(info[i]));
    return info[i].As<Napi::Number>().DoubleValue();
  }
  float f(size_t i, const char* name) const { return (float)number(i, name); }
  bool b(size_t i, const char* name, bool optional = false) const {
    Napi::Value v = info[i];
    if (optional && v.IsUndefined()) return false;
    if (!v.IsBoolean()) fail(i, name, "must be a boolean, received " + received(v));
    return v.As<Napi::Boolean>().Value();
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
  return guarded(info, "setThreads", 1, vk::entry::set_threads<Args>);
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
  return guarded(info, "gemm", 13, vk::entry::gemm<Args>);
}

// linearForward(out, inp, weight, bias|null, M, N, K, accumulate, act)  act: -1 none, 0 gelu, 1 gelu_tanh
Value LinearForward(const CallbackInfo& info) {
  return guarded(info, "linearForward", 9, vk::entry::linear_forward<Args>);
}
// layernormForward(out, mean|null, rstd|null, inp, weight, bias, R, C, eps)
Value LayerNormForward(const CallbackInfo& info) {
  return guarded(info, "layernormForward", 9, vk::entry::layernorm_forward<Args>);
}
// layernormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, R, C)
Value LayerNormBackward(const CallbackInfo& info) {
  return guarded(info, "layernormBackward", 10, vk::entry::layernorm_backward<Args>);
}
// geluForward(out, inp, n, approx)
Value GeluForward(const CallbackInfo& info) {
  return guarded(info, "geluForward", 4, vk::entry::gelu_forward<Args>);
}
// geluBackward(dinp, inp, dout, n, approx)
Value GeluBackward(const CallbackInfo& info) {
  return guarded(info, "geluBackward", 5, vk::entry::gelu_backward<Args>);
}
// softmaxForward(out, inp, R, C)
Value SoftmaxForward(const CallbackInfo& info) {
  return guarded(info, "softmaxForward", 4, vk::entry::softmax_forward<Args>);
}
// softmaxBackward(dinp, out, dout, R, C)
Value SoftmaxBackward(const CallbackInfo& info) {
  return guarded(info, "softmaxBackward", 5, vk::entry::softmax_backward<Args>);
}
// attentionForward(out, probs|null, qkv, B, N, NH, HD, scale, causal?)
Value AttentionForward(const CallbackInfo& info) {
  return guarded(info, "attentionForward", 8, vk::entry::attention_forward<Args>);
}
// attentionBackward(dqkv, dout, qkv, probs, B, N, NH, HD, scale, causal?)
Value AttentionBackward(const CallbackInfo& info) {
  return guarded(info, "attentionBackward", 9, vk::entry::attention_backward<Args>);
}
// im2colPatches(cols, inp, B, C, H, W, P)
Value Im2colPatches(const CallbackInfo& info) {
  return guarded(info, "im2colPatches", 7, vk::entry::im2col_patches<Args>);
}
// col2imPatches(dinp, dcols, B, C, H, W, P)
Value Col2imPatches(const CallbackInfo& info) {
  return guarded(info, "col2imPatches", 7, vk::entry::col2im_patches<Args>);
}
// add(out, a, b, n)
Value Add(const CallbackInfo& info) {
  return guarded(info, "add", 4, vk::entry::add<Args>);
}
// biasAdd(out, bias, R, C)
Value BiasAdd(const CallbackInfo& info) {
  return guarded(info, "biasAdd", 4, vk::entry::bias_add<Args>);
}
// biasBackward(dbias, dout, R, C)
Value BiasBackward(const CallbackInfo& info) {
  return guarded(info, "biasBackward", 4, vk::entry::bias_backward<Args>);
}

// captureStderr(fn): calls fn() with the process's file descriptor 2 pointed at a temporary file,
// and returns [fn's result, the text written to descriptor 2 meanwhile]. For libraries that log
// with fprintf(stderr) and offer no switch (Dawn's dawn::WarningLog, src/utils/log.cc); the caller
// decides what of the text to show. Where no temporary file can be had, fn runs as it is ("" text).
// A throw from fn passes through, descriptor 2 restored first.
Value CaptureStderr(const CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsFunction()) throw Napi::TypeError::New(env, "captureStderr: expected (fn: function)");
  Napi::Function fn = info[0].As<Napi::Function>();
  std::fflush(stderr);
  FILE* tmp = std::tmpfile();
  int saved = tmp ? VK_DUP(2) : -1;
  if (saved < 0 || VK_DUP2(VK_FILENO(tmp), 2) < 0) {
    if (saved >= 0) VK_CLOSE(saved);
    if (tmp) std::fclose(tmp);
    Napi::Array out = Napi::Array::New(env, 2);
    out.Set(0u, fn.Call({}));
    out.Set(1u, Napi::String::New(env, ""));
    return out;
  }
  struct Restore {  // descriptor 2 back however fn ends
    int saved;
    ~Restore() { std::fflush(stderr); VK_DUP2(saved, 2); VK_CLOSE(saved); }
  };
  Napi::Value result;
  {
    Restore r{saved};
    try {
      result = fn.Call({});
    } catch (...) {
      std::fclose(tmp);
      throw;
    }
  }
  std::string text;
  std::rewind(tmp);
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, tmp)) > 0 && text.size() < (1u << 20);) text.append(buf, n);
  std::fclose(tmp);
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, result);
  out.Set(1u, Napi::String::New(env, text));
  return out;
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
  set("captureStderr", CaptureStderr);
  return exports;
}

}  // namespace

NODE_API_MODULE(vitkit, Init)
