#include "hanul/base/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
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

// Threads spin for a while after a run and then sleep (thread_pool.cpp): a run
// must reach workers in either state, and the caller must see the end of a run
// whose last task outlasts its own spin.
TEST(ThreadPool, WakesSleepingWorkersAndWaitsPastTheSpin) {
  using namespace std::chrono_literals;
  for (int threads : {2, 3}) {
    ThreadPool pool(threads);
    for (auto gap : {0ms, 1ms, 10ms}) {
      std::this_thread::sleep_for(gap);  // 10 ms: past the spin, the workers sleep
      std::vector<std::atomic<int>> hits(64);
      pool.run(64, [&](int64_t i) { hits[static_cast<size_t>(i)]++; });
      for (auto& h : hits) EXPECT_EQ(h.load(), 1);
    }
    // One task far longer than the spin: whoever runs the other tasks waits past it.
    std::atomic<int> ran{0};
    pool.run(threads, [&](int64_t i) {
      if (i == 0) std::this_thread::sleep_for(20ms);
      ran++;
    });
    EXPECT_EQ(ran.load(), threads);
  }
}

// Runs of different sizes and functions back to back, each reading state the
// previous one wrote: no task of one run is executed with another run's function
// or index.
TEST(ThreadPool, RunsDoNotMix) {
  ThreadPool pool(3);
  std::vector<int64_t> v(97, 0);
  for (int r = 0; r < 3000; ++r) {
    const int64_t n = 1 + r % 97;
    pool.run(n, [&, r](int64_t i) { v[static_cast<size_t>(i)] += r; });
  }
  for (int64_t i = 0; i < 97; ++i) {
    int64_t want = 0;
    for (int r = 0; r < 3000; ++r)
      if (i < 1 + r % 97) want += r;
    EXPECT_EQ(v[static_cast<size_t>(i)], want) << i;
  }
}

// Destroying a pool right after a run (workers spinning) and after they slept.
TEST(ThreadPool, DestroysWhileWorkersSpinOrSleep) {
  for (int wait_ms : {0, 10}) {
    std::atomic<int> sum{0};
    {
      ThreadPool pool(4);
      pool.run(8, [&](int64_t) { sum++; });
      std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
    }
    EXPECT_EQ(sum.load(), 8);
  }
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
