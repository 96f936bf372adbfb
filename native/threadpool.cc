#include "threadpool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace vk {
namespace {

thread_local bool tl_in_pool = false;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Workers spin for a short while after each job before sleeping on a condition variable: a
// forward pass issues hundreds of short native calls back to back, and waking a sleeping thread
// costs tens of microseconds on a VM (measured: a 197x192 LayerNorm took 16 us on one thread and
// 91 us on two with purely blocking wake-ups).
constexpr auto kSpin = std::chrono::microseconds(300);

class Pool {
 public:
  ~Pool() { resize(0); }

  void resize(int workers) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      stop_.store(true);
      gen_.fetch_add(1);
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
    stop_.store(false);
    active_ = 0;
    job_ = nullptr;
    // new workers must not mistake the generation bumped above (or by earlier runs) for a new job
    const uint64_t start = gen_.load();
    for (int i = 0; i < workers; i++) threads_.emplace_back([this, i, start] { loop(i + 1, start); });
  }

  int workers() const { return (int)threads_.size(); }

  // Runs job(t) for t in [0, nt) with nt <= workers() + 1; t = 0 on the caller.
  void run(int nt, const std::function<void(int)>& job) {
    std::unique_lock<std::mutex> call_lk(call_mu_);
    job_ = &job;
    active_ = nt;
    pending_.store(nt - 1);
    {
      std::unique_lock<std::mutex> lk(mu_);  // so that a worker about to sleep cannot miss it
      gen_.fetch_add(1, std::memory_order_release);
    }
    if (sleepers_.load() > 0) cv_.notify_all();
    tl_in_pool = true;
    job(0);
    tl_in_pool = false;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; pending_.load(std::memory_order_acquire) != 0; i++) {
      cpu_relax();
      if ((i & 255) == 255 && std::chrono::steady_clock::now() - t0 > 10 * kSpin) {
        std::unique_lock<std::mutex> lk(mu_);
        done_cv_.wait(lk, [this] { return pending_.load() == 0; });
        break;
      }
    }
    job_ = nullptr;
  }

 private:
  void loop(int id, uint64_t seen) {
    tl_in_pool = true;
    for (;;) {
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; gen_.load(std::memory_order_acquire) == seen; i++) {
        cpu_relax();
        if ((i & 255) == 255 && std::chrono::steady_clock::now() - t0 > kSpin) {
          std::unique_lock<std::mutex> lk(mu_);
          sleepers_.fetch_add(1);
          cv_.wait(lk, [&] { return gen_.load() != seen; });
          sleepers_.fetch_sub(1);
          break;
        }
      }
      if (stop_.load()) return;
      seen = gen_.load(std::memory_order_acquire);
      if (id >= active_) continue;
      (*job_)(id);
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::unique_lock<std::mutex> lk(mu_);
        done_cv_.notify_one();
      }
    }
  }

  std::vector<std::thread> threads_;
  std::mutex mu_, call_mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int)>* job_ = nullptr;
  int active_ = 0;
  std::atomic<int> pending_{0};
  std::atomic<uint64_t> gen_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
};

Pool& pool() {
  static Pool p;
  return p;
}
int g_threads = 1;

}  // namespace

void set_threads(int n) {
  n = std::max(1, std::min(n, 256));
  g_threads = n;
  if (pool().workers() != n - 1) pool().resize(n - 1);
}

int get_threads() { return g_threads; }

void parallel_run(int nt, const std::function<void(int, int)>& fn) {
  nt = std::max(1, std::min(nt, g_threads));
  if (nt == 1 || tl_in_pool) {
    for (int t = 0; t < nt; t++) fn(t, nt);
    return;
  }
  pool().run(nt, [&](int t) { fn(t, nt); });
}

void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  int64_t max_chunks = (n + grain - 1) / grain;
  int nt = (int)std::min<int64_t>(g_threads, max_chunks);
  if (nt <= 1 || tl_in_pool) {
    fn(0, n);
    return;
  }
  pool().run(nt, [&](int t) {
    int64_t b = n * t / nt, e = n * (t + 1) / nt;
    if (b < e) fn(b, e);
  });
}

}  // namespace vk
