// One thread pool, made once (STYLE 9). Kernels take a range [begin, end) and
// the pool hands ranges out; how work is split never changes what is computed,
// so results do not depend on the thread count.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace hanul {

class ThreadPool {
 public:
  // n_threads <= 0: one per hardware thread. The calling thread is one of them.
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int n_threads() const { return n_threads_; }

  // Calls fn(task) for every task in [0, n_tasks) across the pool and returns
  // when all are done. Not reentrant: fn must not call run() on this pool.
  void run(int64_t n_tasks, const std::function<void(int64_t task)>& fn);

 private:
  void worker_loop();
  // Claims and runs tasks of run `gen` until none is left unclaimed or a later run
  // is current.
  void drain(uint64_t gen);

  int n_threads_;
  std::vector<std::thread> workers_;
  // A run is published as one ticket: its generation in the high 32 bits, the count
  // of its unclaimed tasks in the low 32. A thread claims a task by a
  // compare-exchange that also checks the generation, so it never runs one run's
  // function with another run's task, and needs no lock to join a run.
  std::atomic<uint64_t> ticket_{0};
  std::atomic<const std::function<void(int64_t)>*> fn_{nullptr};
  std::atomic<int64_t> n_tasks_{0};
  std::atomic<int64_t> done_{0};
  // Sleeping is the slow path: threads spin first (see thread_pool.cpp). Those that
  // sleep say so in these counters, under mu_, so that a run or the end of one
  // notifies only when someone sleeps.
  std::mutex mu_;
  std::condition_variable cv_work_;
  std::condition_variable cv_done_;
  std::atomic<int> sleeping_workers_{0};
  std::atomic<bool> caller_sleeping_{false};
  std::atomic<bool> stop_{false};
};

// Splits [0, n) into contiguous chunks of at least `grain` items (about four
// per thread) and calls fn(begin, end) for each; runs inline when pool is null
// or the work is one chunk.
void parallel_for(ThreadPool* pool, int64_t n, int64_t grain,
                  const std::function<void(int64_t begin, int64_t end)>& fn);

// The process-wide pool, sized by set_default_threads() (the CLI's -t) or the
// hardware.
ThreadPool& default_pool();
void set_default_threads(int n_threads);

}  // namespace hanul
