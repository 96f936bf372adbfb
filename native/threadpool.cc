#include "threadpool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace vk {
namespace {

thread_local bool tl_in_pool = false;

class Pool {
 public:
  ~Pool() { resize(0); }

  void resize(int workers) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      stop_ = true;
      generation_++;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
    stop_ = false;
    active_ = 0;
    job_ = nullptr;
    // new workers must not mistake the generation bumped above (or by earlier runs) for a new job
    const uint64_t start = generation_;
    for (int i = 0; i < workers; i++) threads_.emplace_back([this, i, start] { loop(i + 1, start); });
  }

  int workers() const { return (int)threads_.size(); }

  // Runs job(t) for t in [0, nt) with nt <= workers() + 1; t = 0 on the caller.
  void run(int nt, const std::function<void(int)>& job) {
    std::unique_lock<std::mutex> call_lk(call_mu_);
    {
      std::unique_lock<std::mutex> lk(mu_);
      job_ = &job;
      active_ = nt;
      pending_.store(nt - 1);
      generation_++;
    }
    cv_.notify_all();
    tl_in_pool = true;
    job(0);
    tl_in_pool = false;
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [this] { return pending_.load() == 0; });
    job_ = nullptr;
  }

 private:
  void loop(int id, uint64_t seen) {
    tl_in_pool = true;
    for (;;) {
      const std::function<void(int)>* job;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        if (id >= active_) continue;
        job = job_;
      }
      (*job)(id);
      if (pending_.fetch_sub(1) == 1) {
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
  uint64_t generation_ = 0;
  bool stop_ = false;
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
