// hanul's side of bench_gemm_torch.py: times gemm::gemm (the GEMM of training's
// forward and backward products) at one shape and prints one JSON line with the
// best GFLOP/s over the repetitions.
//   gemm_bench --m 2048 --k 288 --n 32000 --a rows|t --b rows|t [-t 2] [--reps 5]
// Layouts as in gemm.h: a "rows" is A [m, k], "t" is A stored [k, m]; b "rows" is
// B [n, k] (a weight, y = x·Wᵀ), "t" is B stored [k, n] (dx = dy·W, dW = dyᵀ·x).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "hanul/base/thread_pool.h"
#include "hanul/kernels/cpu/gemm.h"
#include "hanul/kernels/cpu/ops.h"

using namespace hanul;

int main(int argc, char** argv) {
  int64_t m = 2048, k = 288, n = 288;
  int threads = 2, reps = 5;
  cpu::gemm::Layout la = cpu::gemm::Layout::kRows, lb = cpu::gemm::Layout::kRows;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string f = argv[i];
    const char* v = argv[i + 1];
    if (f == "--m") m = std::atoll(v);
    else if (f == "--k") k = std::atoll(v);
    else if (f == "--n") n = std::atoll(v);
    else if (f == "-t") threads = std::atoi(v);
    else if (f == "--reps") reps = std::atoi(v);
    else if (f == "--a") la = std::strcmp(v, "t") == 0 ? cpu::gemm::Layout::kTransposed : cpu::gemm::Layout::kRows;
    else if (f == "--b") lb = std::strcmp(v, "t") == 0 ? cpu::gemm::Layout::kTransposed : cpu::gemm::Layout::kRows;
    else {
      std::fprintf(stderr, "gemm_bench: unknown flag %s\n", f.c_str());
      return 2;
    }
  }
  if (m <= 0 || k <= 0 || n <= 0 || threads <= 0 || reps <= 0) {
    std::fprintf(stderr, "gemm_bench: m, k, n, -t and --reps must be positive\n");
    return 2;
  }
  ThreadPool pool(threads);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1, 1);
  std::vector<float> a(static_cast<size_t>(m * k)), b(static_cast<size_t>(n * k)),
      y(static_cast<size_t>(m * n));
  for (auto& v : a) v = dist(rng);
  for (auto& v : b) v = dist(rng);
  double best = 1e30;
  for (int r = 0; r < reps + 1; ++r) {  // the first run warms up (page faults, caches)
    const auto t0 = std::chrono::steady_clock::now();
    cpu::gemm::gemm(a.data(), la, b.data(), lb, m, k, n, y.data(), false, &pool);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r > 0) best = std::min(best, s);
  }
  std::printf("{\"impl\": \"hanul\", \"gflops\": %.2f, \"isa\": \"%s\"}\n",
              2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) / best * 1e-9,
              cpu::isa_name(cpu::active_isa()));
  return 0;
}
