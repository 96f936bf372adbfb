// The thread pool behind parallel_for / parallel_run.
//
// A call is split into `nchunks` chunks that threads claim one at a time; the caller claims
// chunks too, and returns once every chunk has run. Nobody waits for a thread that has not
// claimed work: on a busy machine where a worker is descheduled, the caller simply runs the
// remaining chunks itself (static partitioning made 2 threads 2.5x slower than 1 there).
//
// Claims go through one 64-bit ticket that holds everything a claim depends on:
//   ticket = generation (40 bits) | chunk count (12 bits) | next chunk (12 bits)
// advanced by CAS. A worker decides "chunk c < n of generation g is free" from one load of the
// ticket and claims it with a CAS on that same value, so a worker that wakes late for a finished
// call cannot pair the old generation's ticket with the next call's chunk count (issue 7: with
// the count in a separate atomic, a stale ticket passed `c < n` against the next call's larger
// count, its CAS succeeded, chunks ran twice and the caller could wait forever). job_ is read
// only after a successful claim: the ticket store that published it (release) is what the CAS
// read (acquire), and the call cannot return before the claimed chunk is done.
//
// Exceptions thrown by a chunk (std::bad_alloc from a scratch buffer, say) are caught on the
// thread that ran it; the first one is rethrown on the calling thread after every claimed chunk
// has finished, and chunks not yet started are skipped. Nothing escapes a worker thread (which
// would terminate the process), and tl_in_pool is restored by RAII.
//
// Workers spin for a short while after each call before sleeping on a condition variable: a
// forward pass issues hundreds of short native calls back to back, and waking a sleeping thread
// costs tens of microseconds on a VM (a 197x192 LayerNorm took 16 us on one thread and 91 us on
// two with purely blocking wake-ups).
#include "threadpool.h"

#include <algorithm>
#include <cstdint>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "platform.h"

// Lab hook (lab/threadpool): a yield where a late worker would need to be preempted to hit a
// race between reading the ticket and claiming it. Never defined in the addon build.
#ifdef VK_POOL_RACE_YIELD
#define VK_RACE_WINDOW() std::this_thread::yield()
#else
#define VK_RACE_WINDOW() (void)0
#endif

namespace vk {
namespace {

thread_local bool tl_in_pool = false;

struct InPool {  // marks the current thread as running pool work (nested calls run serially)
  bool saved;
  InPool() : saved(tl_in_pool) { tl_in_pool = true; }
  ~InPool() { tl_in_pool = saved; }
};

constexpr auto kSpin = std::chrono::microseconds(300);

// ticket layout
constexpr int kChunkBits = 12;
constexpr uint64_t kChunkMask = (uint64_t(1) << kChunkBits) - 1;
constexpr int kMaxChunks = (int)kChunkMask;  // 4095
constexpr uint64_t gen_of(uint64_t t) { return t >> (2 * kChunkBits); }
constexpr int count_of(uint64_t t) { return (int)((t >> kChunkBits) & kChunkMask); }
constexpr int next_of(uint64_t t) { return (int)(t & kChunkMask); }

class Pool {
 public:
  ~Pool() { resize(0); }

  // Callers hold call_mu_ (set_threads and run are serialized).
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
    // std::thread may throw std::system_error: the pool then keeps the threads it has
    for (int i = 0; i < workers; i++) threads_.emplace_back([this, start] { loop(start); });
  }

  int workers() const { return (int)threads_.size(); }
  std::mutex& call_mutex() { return call_mu_; }

  // Runs job(c) for every chunk c in [0, nchunks), on the caller and the workers. Caller holds
  // call_mu_. Rethrows the first exception a chunk threw.
  void run(int nchunks, const std::function<void(int)>& job) {
    nchunks = std::max(1, std::min(nchunks, kMaxChunks));
    const uint64_t gen = ++gen_ & ((uint64_t(1) << (64 - 2 * kChunkBits)) - 1);
    job_.store(&job, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    failed_.store(false, std::memory_order_relaxed);
    error_ = nullptr;
    VK_RACE_WINDOW();
    // publishes job_, done_, failed_ together with (gen, nchunks, next chunk 0)
    ticket_.store((gen << (2 * kChunkBits)) | (uint64_t(nchunks) << kChunkBits), std::memory_order_release);
    {
      std::unique_lock<std::mutex> lk(mu_);  // so that a worker about to sleep cannot miss it
      wake_.fetch_add(1, std::memory_order_release);
    }
    if (sleepers_.load() > 0) cv_.notify_all();
    {
      InPool in_pool;
      work();
    }
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
    if (failed_.load(std::memory_order_acquire)) {
      std::exception_ptr e;
      {
        std::unique_lock<std::mutex> lk(mu_);
        e = error_;
        error_ = nullptr;
      }
      if (e) std::rethrow_exception(e);
    }
  }

 private:
  // Claim and run chunks of the ticket's current generation until none is left.
  void work() {
    for (;;) {
      uint64_t t = ticket_.load(std::memory_order_acquire);
      const int c = next_of(t), n = count_of(t);
      if (c >= n) return;
      VK_RACE_WINDOW();
      // succeeds only if the ticket still reads (same generation, same count, chunk c next)
      if (!ticket_.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
      if (!failed_.load(std::memory_order_relaxed)) {
        try {
          (*job_.load(std::memory_order_relaxed))(c);
        } catch (...) {
          std::unique_lock<std::mutex> lk(mu_);
          if (!error_) error_ = std::current_exception();
          failed_.store(true, std::memory_order_release);
        }
      }
      if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == n) {
        std::unique_lock<std::mutex> lk(mu_);
        done_cv_.notify_all();
      }
    }
  }

  void loop(uint64_t seen) {
    InPool in_pool;
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
      work();
    }
  }

  std::vector<std::thread> threads_;
  std::mutex mu_, call_mu_;
  std::condition_variable cv_, done_cv_;
  std::atomic<const std::function<void(int)>*> job_{nullptr};
  uint64_t gen_ = 0;                 // call counter, written by the caller only (under call_mu_)
  std::atomic<uint64_t> ticket_{0};  // generation | chunk count | next chunk (see top)
  std::atomic<int> done_{0};         // chunks finished in the current generation
  std::atomic<bool> failed_{false};  // a chunk of the current generation threw
  std::exception_ptr error_;         // the first exception (under mu_)
  std::atomic<uint64_t> wake_{0};    // bumped to wake workers (new call, or stop)
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
};

Pool& pool() {
  static Pool p;
  return p;
}
std::atomic<int> g_threads{1};

}  // namespace

void set_threads(int n) {
  n = std::max(1, std::min(n, kMaxThreads));
  std::unique_lock<std::mutex> lk(pool().call_mutex());
  if (pool().workers() != n - 1) {
    try {
      pool().resize(n - 1);
    } catch (...) {
      g_threads.store(pool().workers() + 1);
      throw;
    }
  }
  g_threads.store(n);
}

int get_threads() { return g_threads.load(std::memory_order_relaxed); }

bool in_parallel_region() { return tl_in_pool; }

void parallel_run(int nt, const std::function<void(int, int)>& fn) {
  nt = std::max(1, std::min(nt, get_threads()));
  if (nt == 1 || tl_in_pool) {
    for (int t = 0; t < nt; t++) fn(t, nt);
    return;
  }
  std::unique_lock<std::mutex> lk(pool().call_mutex());
  pool().run(nt, [&](int t) { fn(t, nt); });
}

void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  int64_t max_chunks = (n + grain - 1) / grain;
  int nt = (int)std::min<int64_t>(get_threads(), max_chunks);
  if (nt <= 1 || tl_in_pool) {
    fn(0, n);
    return;
  }
  std::unique_lock<std::mutex> lk(pool().call_mutex());
  pool().run(nt, [&](int t) {
    int64_t b, e;
    if (n <= (INT64_MAX >> 9)) {  // n * (t + 1) cannot overflow (nt <= 256)
      b = n * t / nt;
      e = n * (t + 1) / nt;
    } else {
      const int64_t q = n / nt, r = n % nt;
      b = q * t + std::min<int64_t>(t, r);
      e = b + q + (t < r ? 1 : 0);
    }
    if (b < e) fn(b, e);
  });
}

}  // namespace vk
