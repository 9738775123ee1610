#include "hanul/base/thread_pool.h"

#include <algorithm>
#include <memory>

namespace hanul {

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0) n_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  n_threads_ = n_threads;
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_work_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::drain() {
  const auto& fn = *fn_;
  for (;;) {
    int64_t task = next_.fetch_add(1, std::memory_order_relaxed);
    if (task >= n_tasks_) break;
    fn(task);
    done_.fetch_add(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_work_.wait(lock, [&] { return stop_ || generation_.load() != seen; });
      if (stop_) return;
      seen = generation_.load();
      if (fn_ == nullptr) continue;  // woke after that run had finished
      ++active_workers_;
    }
    drain();
    {
      std::lock_guard<std::mutex> lock(mu_);
      --active_workers_;
    }
    cv_done_.notify_all();
  }
}

void ThreadPool::run(int64_t n_tasks, const std::function<void(int64_t)>& fn) {
  if (n_tasks <= 0) return;
  if (workers_.empty() || n_tasks == 1) {
    for (int64_t i = 0; i < n_tasks; ++i) fn(i);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    fn_ = &fn;
    n_tasks_ = n_tasks;
    next_.store(0);
    done_.store(0);
    generation_.fetch_add(1);
  }
  cv_work_.notify_all();
  drain();
  // Every task is done and no worker still holds a reference to fn.
  std::unique_lock<std::mutex> lock(mu_);
  cv_done_.wait(lock, [&] { return done_.load() == n_tasks_ && active_workers_ == 0; });
  fn_ = nullptr;
}

void parallel_for(ThreadPool* pool, int64_t n, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  int64_t n_threads = pool ? pool->n_threads() : 1;
  int64_t chunks = std::min<int64_t>((n + grain - 1) / grain, n_threads * 4);
  if (chunks <= 1 || pool == nullptr) {
    fn(0, n);
    return;
  }
  int64_t per = (n + chunks - 1) / chunks;
  chunks = (n + per - 1) / per;
  pool->run(chunks, [&](int64_t c) { fn(c * per, std::min(n, (c + 1) * per)); });
}

namespace {
int g_default_threads = 0;
std::unique_ptr<ThreadPool>& pool_slot() {
  static std::unique_ptr<ThreadPool> pool;
  return pool;
}
}  // namespace

void set_default_threads(int n_threads) {
  g_default_threads = n_threads;
  pool_slot().reset();
}

ThreadPool& default_pool() {
  auto& slot = pool_slot();
  if (!slot) slot = std::make_unique<ThreadPool>(g_default_threads);
  return *slot;
}

}  // namespace hanul
