// Thread-pool stress test: many back-to-back parallel_run / parallel_for calls whose chunk counts
// change from call to call (the race of issue 7: a worker late for a finished call claims a
// chunk of the next one), at several thread counts. Every chunk must run exactly once; a watchdog
// turns a hang into a failure. Optional: exceptions thrown inside worker chunks (--throw) must
// reach the caller, and the pool must keep working afterwards.
//
//   stress [--iters N] [--threads 3,4,8] [--throw] [--seconds S]
// Exit 0: all calls correct. Exit 1: a chunk ran 0 or 2+ times. Exit 2: hang (watchdog).
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "threadpool.h"

namespace {

std::atomic<uint64_t> g_progress{0};

void watchdog(double seconds) {
  std::thread([seconds] {
    uint64_t last = g_progress.load();
    auto t0 = std::chrono::steady_clock::now();
    for (;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      const uint64_t p = g_progress.load();
      if (p != last) {
        last = p;
        t0 = std::chrono::steady_clock::now();
      } else if (std::chrono::steady_clock::now() - t0 > std::chrono::duration<double>(seconds)) {
        std::fprintf(stderr, "HANG: no call finished for %.1f s (after %llu calls)\n", seconds,
                     (unsigned long long)p);
        std::fflush(stderr);
        std::_Exit(2);
      }
    }
  }).detach();
}

uint64_t rng_state = 0x9e3779b97f4a7c15ull;
uint32_t rnd() {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (uint32_t)(rng_state >> 16);
}

[[noreturn]] void fail(const char* what, int threads, long it, int c, int count) {
  std::fprintf(stderr, "FAIL %s: threads=%d call=%ld chunk=%d ran %d times\n", what, threads, it, c, count);
  std::_Exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  long iters = 200000;
  bool do_throw = false;
  double hang_s = 10;
  std::vector<int> thread_counts = {3, 4, 8};
  for (int i = 1; i < argc; i++) {
    if (!std::strcmp(argv[i], "--iters") && i + 1 < argc) iters = std::atol(argv[++i]);
    else if (!std::strcmp(argv[i], "--seconds") && i + 1 < argc) hang_s = std::atof(argv[++i]);
    else if (!std::strcmp(argv[i], "--throw")) do_throw = true;
    else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) {
      thread_counts.clear();
      for (char* s = std::strtok(argv[++i], ","); s; s = std::strtok(nullptr, ",")) thread_counts.push_back(std::atoi(s));
    } else {
      std::fprintf(stderr, "usage: stress [--iters N] [--threads 3,4,8] [--throw] [--seconds S]\n");
      return 64;
    }
  }
  watchdog(hang_s);
  std::atomic<int> counts[512];
  long thrown = 0, caught = 0;
  for (int T : thread_counts) {
    vk::set_threads(T);
    if (vk::get_threads() != T) {
      std::fprintf(stderr, "FAIL set_threads(%d) -> %d\n", T, vk::get_threads());
      return 1;
    }
    for (long it = 0; it < iters; it++) {
      const uint32_t r = rnd();
      if (r % 3 == 0) {
        // parallel_run with a chunk count that jumps around in [1, T]
        const int nt = 1 + (int)(rnd() % T);
        for (int c = 0; c < nt; c++) counts[c].store(0, std::memory_order_relaxed);
        std::atomic<int> bad_nt{0};
        vk::parallel_run(nt, [&](int t, int n) {
          if (n != nt) bad_nt.store(1);
          counts[t].fetch_add(1, std::memory_order_relaxed);
        });
        if (bad_nt.load()) fail("parallel_run saw a wrong chunk count", T, it, -1, 0);
        for (int c = 0; c < nt; c++)
          if (counts[c].load() != 1) fail("parallel_run", T, it, c, counts[c].load());
      } else {
        // parallel_for over n elements: every element exactly once
        const int n = 1 + (int)(rnd() % 300);
        const int grain = 1 + (int)(rnd() % 40);
        for (int c = 0; c < n; c++) counts[c].store(0, std::memory_order_relaxed);
        const bool throw_now = do_throw && rnd() % 16 == 0;
        const int victim = throw_now ? (int)(rnd() % n) : -1;
        try {
          vk::parallel_for(n, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; i++) counts[i].fetch_add(1, std::memory_order_relaxed);
            if (victim >= b && victim < e) {
              if (victim % 2) throw std::bad_alloc();
              throw std::runtime_error("chunk failed");
            }
            // a nested call (serial inside a pool chunk; a pool call of its own when the outer call
            // ran serially on the caller) covers its range exactly once
            std::atomic<int> inner{0};
            vk::parallel_for(4, [&](int64_t b2, int64_t e2) { inner.fetch_add((int)(e2 - b2)); });
            if (inner.load() != 4) { std::fprintf(stderr, "FAIL nested call: inner=%d\n", inner.load()); std::_Exit(3); }
          }, grain);
          if (throw_now) fail("exception lost", T, it, victim, 0);
        } catch (const std::bad_alloc&) {
          caught++;
          if (victim % 2 != 1) fail("wrong exception (bad_alloc)", T, it, victim, 0);
        } catch (const std::runtime_error& e) {
          caught++;
          if (victim % 2 != 0 || std::strcmp(e.what(), "chunk failed")) fail("wrong exception", T, it, victim, 0);
        }
        if (vk::in_parallel_region()) fail("the caller is left marked as inside the pool", T, it, victim, 0);
        if (throw_now) {
          thrown++;
          continue;  // chunks after a failure may be skipped
        }
        for (int c = 0; c < n; c++)
          if (counts[c].load() != 1) fail("parallel_for", T, it, c, counts[c].load());
      }
      g_progress.fetch_add(1, std::memory_order_relaxed);
    }
    // after exceptions, the calling thread is not stuck in "nested" (serial) mode
    std::atomic<int> distinct{0};
    std::vector<std::thread::id> ids(T);
    vk::parallel_run(T, [&](int t, int) { ids[t] = std::this_thread::get_id(); });
    for (int t = 0; t < T; t++) {
      bool seen = false;
      for (int u = 0; u < t; u++) seen |= ids[u] == ids[t];
      if (!seen) distinct++;
    }
    std::printf("threads=%d: %ld calls ok (distinct threads used in a final call: %d)\n", T, iters, distinct.load());
  }
  if (do_throw) {
    std::printf("exceptions: %ld thrown in chunks, %ld caught on the caller\n", thrown, caught);
    if (thrown != caught) return 1;
  }
  return 0;
}
