// A small persistent thread pool: parallel_for splits [0, n) into contiguous chunks, one per
// thread; the calling thread runs chunk 0. Nested calls (from inside a chunk) run serially.
#pragma once
#include <cstdint>
#include <functional>

namespace vk {

constexpr int kMaxThreads = 256;

// n is clamped to [1, kMaxThreads]; takes effect for the next parallel_for. Safe to call at any
// time from any thread (it waits for a call in progress). May throw std::system_error.
void set_threads(int n);
int get_threads();
// Concurrent calls from several threads are serialized. An exception thrown by fn on any thread
// is rethrown on the calling thread once every chunk that started has finished.
// fn(begin, end) is called on disjoint ranges covering [0, n). grain: minimum chunk size.
void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain = 1);
// true inside a chunk (on a worker, or on the caller while it runs chunks): nested calls there run
// serially. False again on the caller once parallel_for returns, also when a chunk threw.
bool in_parallel_region();
// fn(t, nt) is called once per thread t in [0, nt): for kernels that partition work themselves.
void parallel_run(int nt, const std::function<void(int, int)>& fn);

}  // namespace vk
