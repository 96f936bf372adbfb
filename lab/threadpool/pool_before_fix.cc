// The pool as it was before the issue-7 fix (commit 619c093), plus the VK_RACE_WINDOW() hook:
// ./build.sh $PWD/pool_before_fix.cc && ./stress ... reproduces the race (chunks run twice / hang).
// The thread pool behind parallel_for / parallel_run.
//
// A call is split into `nchunks` chunks that threads claim one at a time; the caller claims
// chunks too, and returns once every chunk has run. Nobody waits for a thread that has not
// claimed work: on a busy machine where a worker is descheduled, the caller simply runs the
// remaining chunks itself (static partitioning made 2 threads 2.5x slower than 1 there).
//
// Claims go through one 64-bit ticket = (generation << 32) | next chunk index, advanced by CAS,
// so a worker that wakes late for a finished call can never claim a chunk of the next one: its
// CAS fails once the generation has moved on. job_ and nchunks_ are only read under a ticket of
// a live generation, whose call cannot return before that chunk is done.
//
// Workers spin for a short while after each call before sleeping on a condition variable: a
// forward pass issues hundreds of short native calls back to back, and waking a sleeping thread
// costs tens of microseconds on a VM (a 197x192 LayerNorm took 16 us on one thread and 91 us on
// two with purely blocking wake-ups).
#include "threadpool.h"
#ifdef VK_POOL_RACE_YIELD
#define VK_RACE_WINDOW() std::this_thread::yield()
#else
#define VK_RACE_WINDOW() (void)0
#endif

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

constexpr auto kSpin = std::chrono::microseconds(300);

class Pool {
 public:
  ~Pool() { resize(0); }

  void resize(int workers) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      stop_.store(true);
      wake_.fetch_add(1);
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
    stop_.store(false);
    const uint64_t start = wake_.load();
    for (int i = 0; i < workers; i++) threads_.emplace_back([this, start] { loop(start); });
  }

  int workers() const { return (int)threads_.size(); }

  // Runs job(c) for every chunk c in [0, nchunks), on the caller and the workers.
  void run(int nchunks, const std::function<void(int)>& job) {
    std::unique_lock<std::mutex> call_lk(call_mu_);
    const uint64_t gen = ++gen_ & 0xffffffffu;  // 32 bits in the ticket
    job_.store(&job, std::memory_order_relaxed);
    nchunks_.store(nchunks, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    VK_RACE_WINDOW();
    ticket_.store(gen << 32, std::memory_order_release);  // publishes job_, nchunks_, done_
    {
      std::unique_lock<std::mutex> lk(mu_);  // so that a worker about to sleep cannot miss it
      wake_.fetch_add(1, std::memory_order_release);
    }
    if (sleepers_.load() > 0) cv_.notify_all();
    tl_in_pool = true;
    work(gen);
    tl_in_pool = false;
    // wait for chunks claimed by workers that are still running them
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; done_.load(std::memory_order_acquire) != nchunks; i++) {
      cpu_relax();
      if ((i & 63) == 63) {
        std::this_thread::yield();  // a descheduled worker may need this core to finish
        if (std::chrono::steady_clock::now() - t0 > 10 * kSpin) {
          std::unique_lock<std::mutex> lk(mu_);
          done_cv_.wait(lk, [&] { return done_.load() == nchunks; });
          break;
        }
      }
    }
    job_.store(nullptr, std::memory_order_relaxed);
  }

 private:
  // Claim and run chunks of generation `gen` until none is left.
  void work(uint64_t gen) {
    for (;;) {
      uint64_t t = ticket_.load(std::memory_order_acquire);
      if ((t >> 32) != gen) return;
      const int c = (int)(t & 0xffffffffu);
      // a worker late for a finished call may read the next call's values here: its CAS then fails
      const int n = nchunks_.load(std::memory_order_relaxed);
      if (c >= n) return;
      VK_RACE_WINDOW();
      if (!ticket_.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel)) continue;
      (*job_.load(std::memory_order_relaxed))(c);
      if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == n) {
        std::unique_lock<std::mutex> lk(mu_);
        done_cv_.notify_all();
      }
    }
  }

  void loop(uint64_t seen) {
    tl_in_pool = true;
    for (;;) {
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; wake_.load(std::memory_order_acquire) == seen; i++) {
        cpu_relax();
        if ((i & 255) == 255 && std::chrono::steady_clock::now() - t0 > kSpin) {
          std::unique_lock<std::mutex> lk(mu_);
          sleepers_.fetch_add(1);
          cv_.wait(lk, [&] { return wake_.load() != seen; });
          sleepers_.fetch_sub(1);
          break;
        }
      }
      if (stop_.load()) return;
      seen = wake_.load(std::memory_order_acquire);
      work(ticket_.load(std::memory_order_acquire) >> 32);
    }
  }

  std::vector<std::thread> threads_;
  std::mutex mu_, call_mu_;
  std::condition_variable cv_, done_cv_;
  std::atomic<const std::function<void(int)>*> job_{nullptr};
  std::atomic<int> nchunks_{0};
  uint64_t gen_ = 0;                 // call counter, written by the caller only (under call_mu_)
  std::atomic<uint64_t> ticket_{0};  // (generation << 32) | next chunk
  std::atomic<int> done_{0};         // chunks finished in the current generation
  std::atomic<uint64_t> wake_{0};    // bumped to wake workers (new call, or stop)
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
