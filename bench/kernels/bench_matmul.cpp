// cpu::matmul speed per weight dtype. Decode is a memory-bound matvec, so the
// figure that matters is GB/s of weights streamed (bytes_per_second), to compare
// with the machine's memory bandwidth; prompt processing (m > 1) reports items =
// multiply-adds per second.
//   build-*/bench/bench_matmul --benchmark_filter=Matvec
#include <benchmark/benchmark.h>

#include <random>
#include <thread>
#include <vector>

#include "hanul/base/thread_pool.h"
#include "hanul/kernels/cpu/ops.h"
#include "hanul/tensor/half.h"
#include "hanul/tensor/quant_blocks.h"
#include "hanul/tensor/quantize.h"

namespace hanul {
namespace {

constexpr int64_t kN = 4096, kK = 4096;

// Random weights of the given type: float types by conversion, quantized types as
// random quant bytes with small fp16 scales (quantizing 16M floats to K-quants
// would take longer than the benchmark).
std::vector<uint8_t> make_weights(DType t) {
  std::mt19937 rng(42);
  std::vector<uint8_t> w(static_cast<size_t>(kN * row_bytes(t, kK)));
  const auto info = dtype_info(t);
  if (!info->quantized) {
    std::uniform_real_distribution<float> dist(-1, 1);
    std::vector<float> row(kK);
    for (int64_t j = 0; j < kN; ++j) {
      for (auto& v : row) v = dist(rng);
      (void)quantize_row(t, row.data(), w.data() + j * row_bytes(t, kK), kK);
    }
    return w;
  }
  for (auto& b : w) b = static_cast<uint8_t>(rng());
  // Put a small fp16 in every block's scale fields so no value is inf / nan.
  const int64_t n_blocks = kN * kK / info->block_size;
  const uint16_t small = f32_to_fp16(0.01f);
  for (int64_t b = 0; b < n_blocks; ++b) {
    uint8_t* blk = w.data() + b * info->type_size;
    if (t == DType::Q4_K) {
      reinterpret_cast<BlockQ4_K*>(blk)->d = small;
      reinterpret_cast<BlockQ4_K*>(blk)->dmin = small;
    } else if (t == DType::Q6_K) {
      reinterpret_cast<BlockQ6_K*>(blk)->d = small;
    } else {  // Q8_0, Q4_0: the scale leads the block
      reinterpret_cast<uint16_t*>(blk)[0] = small;
    }
  }
  return w;
}

void run(benchmark::State& state, DType t, int64_t m) {
  const int threads = static_cast<int>(state.range(0));
  ThreadPool pool(threads);
  const std::vector<uint8_t> w = make_weights(t);
  std::vector<float> x(static_cast<size_t>(m * kK)), y(static_cast<size_t>(m * kN));
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1, 1);
  for (auto& v : x) v = dist(rng);
  for (auto _ : state) {
    cpu::matmul(x.data(), m, kK, w.data(), t, kN, nullptr, y.data(), &pool);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(w.size()));
  state.SetItemsProcessed(state.iterations() * m * kN * kK);
  state.SetLabel(std::string(dtype_name(t)) + " " + cpu::isa_name(cpu::active_isa()));
}

void threads_args(benchmark::internal::Benchmark* b) {
  const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  b->Arg(1);
  if (hw > 1) b->Arg(hw);
  b->ArgName("threads")->UseRealTime()->Unit(benchmark::kMicrosecond);
}

#define HANUL_MATVEC(T)                                                          \
  void BM_Matvec_##T(benchmark::State& s) { run(s, DType::T, 1); }              \
  BENCHMARK(BM_Matvec_##T)->Apply(threads_args);                                 \
  void BM_Prompt32_##T(benchmark::State& s) { run(s, DType::T, 32); }           \
  BENCHMARK(BM_Prompt32_##T)->Apply(threads_args);

HANUL_MATVEC(F32)
HANUL_MATVEC(F16)
HANUL_MATVEC(BF16)
HANUL_MATVEC(Q8_0)
HANUL_MATVEC(Q4_0)
HANUL_MATVEC(Q4_K)
HANUL_MATVEC(Q6_K)  // the dequantize + float-dot fallback, for comparison

}  // namespace
}  // namespace hanul

BENCHMARK_MAIN();
