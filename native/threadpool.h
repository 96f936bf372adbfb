// A small persistent thread pool: parallel_for splits [0, n) into contiguous chunks, one per
// thread; the calling thread runs chunk 0. Nested calls (from inside a chunk) run serially.
#pragma once
#include <cstdint>
#include <functional>

namespace vk {

void set_threads(int n);  // n >= 1; takes effect for the next parallel_for
int get_threads();
// fn(begin, end) is called on disjoint ranges covering [0, n). grain: minimum chunk size.
void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain = 1);
// fn(t, nt) is called once per thread t in [0, nt): for kernels that partition work themselves.
void parallel_run(int nt, const std::function<void(int, int)>& fn);

}  // namespace vk
