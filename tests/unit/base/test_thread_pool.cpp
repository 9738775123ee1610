#include "hanul/base/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

namespace hanul {

TEST(ThreadPool, RunsEveryTaskOnce) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 2, 7, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      pool.run(n, [&](int64_t i) { hits[static_cast<size_t>(i)]++; });
      for (auto& h : hits) EXPECT_EQ(h.load(), 1);
    }
  }
}

TEST(ThreadPool, ManyRunsBackToBack) {
  ThreadPool pool(4);
  std::atomic<int64_t> sum{0};
  for (int r = 0; r < 2000; ++r) pool.run(3, [&](int64_t i) { sum += i; });
  EXPECT_EQ(sum.load(), 2000 * 3);
}

TEST(ParallelFor, CoversRangeExactly) {
  ThreadPool pool(3);
  for (int64_t n : {1, 5, 64, 1001}) {
    for (int64_t grain : {1, 7, 2000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      parallel_for(&pool, n, grain, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
      });
      for (auto& h : hits) EXPECT_EQ(h.load(), 1);
    }
  }
  int calls = 0;
  parallel_for(nullptr, 10, 1, [&](int64_t b, int64_t e) { calls++; EXPECT_EQ(e - b, 10); });
  EXPECT_EQ(calls, 1);
}

}  // namespace hanul
