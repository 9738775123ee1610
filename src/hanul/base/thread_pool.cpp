#include "hanul/base/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <memory>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

namespace hanul {
namespace {

// How long a thread spins for the next run (a worker) or for the end of the
// current one (the caller) before it sleeps on a condition variable. Waking a
// sleeping thread costs a futex call and the scheduler's latency: ~100 µs on the
// 2-vCPU VM of docs/PERFORMANCE.md, where a 2-task run of 100 µs tasks took 200 µs
// (p50) because the caller ran both before the worker woke. A training step makes
// hundreds of runs with little serial work between them, so the worker spins
// across those gaps; OpenMP runtimes do the same by default (libgomp spins
// ~300k iterations, GOMP_SPINCOUNT). Past the budget the thread sleeps, so an
// idle pool (a server between requests) costs nothing.
constexpr auto kSpin = std::chrono::microseconds(2000);
// Within the spin, every kYieldEvery-th check yields the CPU: where the pool has
// more threads than the machine has cores (tests use 3 on 2), a spinning thread
// must not hold a core that a thread with work is waiting for.
constexpr int kYieldEvery = 64;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(_M_X64)
  _mm_pause();
#endif
}

// Spins until ready() or the budget is spent; true if ready.
template <class Ready>
bool spin_until(Ready ready) {
  const auto until = std::chrono::steady_clock::now() + kSpin;
  for (int i = 1;; ++i) {
    if (ready()) return true;
    if (i % kYieldEvery == 0) {
      if (std::chrono::steady_clock::now() >= until) return ready();
      std::this_thread::yield();
    } else {
      cpu_relax();
    }
  }
}

constexpr uint64_t generation_of(uint64_t ticket) { return ticket >> 32; }
constexpr int64_t tasks_left(uint64_t ticket) { return static_cast<int64_t>(ticket & 0xffffffffu); }

}  // namespace

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0) n_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  n_threads_ = n_threads;
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  cv_work_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::drain(uint64_t gen) {
  // fn_ and n_tasks_ are read before the claim. A claim that succeeds proves run
  // `gen` still had unclaimed tasks after these reads, so it had not returned and
  // the next run had not overwritten them: they were run `gen`'s. The ticket counts
  // the tasks left, not the next index, so a ticket with none left can never be
  // claimed, whatever task count a late reader saw (with the next index, a worker
  // that read the next run's larger count could claim past the end of this run).
  const auto* fn = fn_.load(std::memory_order_acquire);
  const int64_t n = n_tasks_.load(std::memory_order_acquire);
  uint64_t t = ticket_.load(std::memory_order_acquire);
  for (;;) {
    if (generation_of(t) != gen || tasks_left(t) == 0) return;
    if (!ticket_.compare_exchange_weak(t, t - 1, std::memory_order_acq_rel, std::memory_order_acquire))
      continue;  // t now holds the current ticket
    (*fn)(n - tasks_left(t));
    if (done_.fetch_add(1) + 1 == n && caller_sleeping_.load()) {
      std::lock_guard<std::mutex> lock(mu_);
      cv_done_.notify_all();
    }
    t = ticket_.load(std::memory_order_acquire);
  }
}

void ThreadPool::worker_loop() {
  uint64_t seen = 0;  // the generation of the last run this worker looked at
  for (;;) {
    auto fresh = [&] { return stop_.load() || generation_of(ticket_.load()) != seen; };
    if (!spin_until(fresh)) {
      std::unique_lock<std::mutex> lock(mu_);
      sleeping_workers_.fetch_add(1);
      cv_work_.wait(lock, fresh);
      sleeping_workers_.fetch_sub(1);
    }
    if (stop_.load()) return;
    seen = generation_of(ticket_.load(std::memory_order_acquire));
    drain(seen);
  }
}

void ThreadPool::run(int64_t n_tasks, const std::function<void(int64_t)>& fn) {
  if (n_tasks <= 0) return;
  if (workers_.empty() || n_tasks == 1) {
    for (int64_t i = 0; i < n_tasks; ++i) fn(i);
    return;
  }
  // A run's tasks are counted in 32 bits of the ticket.
  if (n_tasks > 0x7fffffff) {
    for (int64_t i = 0; i < n_tasks; i += 0x7fffffff)
      run(std::min<int64_t>(0x7fffffff, n_tasks - i), [&](int64_t t) { fn(i + t); });
    return;
  }
  // Every task of the previous run is done (run() returned only then) and its ticket
  // has none left, so a thread that reads these before the new ticket is published
  // cannot use them: its claim on the old ticket fails (see drain).
  fn_.store(&fn, std::memory_order_relaxed);
  n_tasks_.store(n_tasks, std::memory_order_relaxed);
  done_.store(0, std::memory_order_relaxed);
  const uint64_t gen = generation_of(ticket_.load(std::memory_order_relaxed)) + 1;
  ticket_.store(gen << 32 | static_cast<uint64_t>(n_tasks));  // seq_cst: before the read below
  if (sleeping_workers_.load() > 0) {
    // A worker that counted itself asleep holds mu_ until it waits, so this notify
    // cannot fall between its check of the ticket and its wait.
    std::lock_guard<std::mutex> lock(mu_);
    cv_work_.notify_all();
  }
  drain(gen);
  auto finished = [&] { return done_.load() == n_tasks; };
  if (!spin_until(finished)) {
    std::unique_lock<std::mutex> lock(mu_);
    caller_sleeping_.store(true);
    cv_done_.wait(lock, finished);
    caller_sleeping_.store(false);
  }
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
