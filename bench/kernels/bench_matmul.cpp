// cpu::matmul speed per weight dtype. Decode is a memory-bound matvec, so the
// figure that matters is GB/s of weights streamed (bytes_per_second), to compare
// with the machine's memory bandwidth; prompt processing (m > 1) reports items =
// multiply-adds per second.
//   build-*/bench/bench_matmul --benchmark_filter=Matvec
//
// BM_Gemm: float32 at the shapes of training (m = 2048 and the transposed
// products of matmul_backward) and of prompt processing (m = 128), as GFLOP/s
// (2·m·n·k per call) for path=0 (the row-dot path, gemm::matmul_row_dots: what
// cpu::matmul did before the GEMM) and path=1 (cpu::matmul, i.e. the GEMM):
//   build-*/bench/bench_matmul --benchmark_filter=Gemm
//
// BM_MatmulBackward: cpu::matmul_backward (dx += dy·W and dW += dyᵀ·x, both by
// gemm::gemm on the operands as they lie) at the shapes of train_step for the
// llama2.c 15M model (2048 tokens, d_model 288, d_ff 768, vocab 32000) and the
// ~110M one (1024 tokens, d_model 768, d_ff 2048), as GFLOP/s (4·m·n·k per call),
// float32 (bf16:0) and with bf16 products (bf16:1, MatmulPrecision::kBf16):
//   build-*/bench/bench_matmul --benchmark_filter=MatmulBackward
//
// BM_FmaPeak: the machine's FMA ceiling (registers only), to read the GFLOP/s above
// against: build-*/bench/bench_matmul --benchmark_filter=FmaPeak
#include <benchmark/benchmark.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

#include <random>
#include <string>
#include <thread>
#include <vector>

#include "hanul/base/thread_pool.h"
#include "hanul/kernels/cpu/gemm.h"
#include "hanul/kernels/cpu/ops.h"
#include "hanul/kernels/cpu/ops_backward.h"
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

// y[m, n] = x[m, k] · W[n, k]ᵀ, float32, args {m, k, n, threads, path}.
void BM_Gemm(benchmark::State& state) {
  const int64_t m = state.range(0), k = state.range(1), n = state.range(2);
  const int threads = static_cast<int>(state.range(3));
  const bool gemm = state.range(4) != 0;
  ThreadPool pool(threads);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1, 1);
  std::vector<float> x(static_cast<size_t>(m * k)), w(static_cast<size_t>(n * k));
  std::vector<float> y(static_cast<size_t>(m * n));
  for (auto& v : x) v = dist(rng);
  for (auto& v : w) v = dist(rng);
  for (auto _ : state) {
    if (gemm)
      cpu::matmul(x.data(), m, k, w.data(), DType::F32, n, nullptr, y.data(), &pool);
    else
      cpu::gemm::matmul_row_dots(x.data(), m, k, w.data(), DType::F32, n, nullptr, y.data(), &pool);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOPS"] = benchmark::Counter(
      2.0 * static_cast<double>(m * n * k) * 1e-9 * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
  state.SetLabel(std::string(gemm ? "gemm " : "row-dots ") + cpu::isa_name(cpu::active_isa()));
}

void gemm_args(benchmark::internal::Benchmark* b) {
  // {m, k, n}: training's forward products (d_model 288, d_ff 768, vocab 8192,
  // 2048 rows), then matmul_backward's dx = dy·W (k and n swapped) and
  // dW = dyᵀ·x (m = n, k = 2048), then prompt processing.
  const int64_t shapes[][3] = {
      {2048, 288, 288},  {2048, 288, 768},  {2048, 768, 288},  {2048, 288, 8192},
      {2048, 8192, 288},  // dx of the vocab product; the other dx shapes are above
      {288, 2048, 288},  {768, 2048, 288},  {288, 2048, 768},  {8192, 2048, 288},
      {128, 768, 768},   {128, 3072, 3072}};
  for (const auto& s : shapes)
    for (int threads : {1, 2})
      for (int path : {0, 1}) b->Args({s[0], s[1], s[2], threads, path});
  b->ArgNames({"m", "k", "n", "threads", "path"})->UseRealTime()->Unit(benchmark::kMillisecond);
}
BENCHMARK(BM_Gemm)->Apply(gemm_args);

// dx[m, k] += dy[m, n]·W[n, k] and dW[n, k] += dy[m, n]ᵀ·x[m, k], args {m, k, n, threads}.
void BM_MatmulBackward(benchmark::State& state) {
  const int64_t m = state.range(0), k = state.range(1), n = state.range(2);
  ThreadPool pool(static_cast<int>(state.range(3)));
  // bf16:1 — cpu::MatmulPrecision::kBf16 (vdpbf16ps); skipped without AVX512_BF16.
  const bool bf16 = state.range(4) != 0;
  if (bf16 && !cpu::set_matmul_precision(cpu::MatmulPrecision::kBf16)) {
    state.SkipWithError("no AVX512_BF16 on this machine");
    return;
  }
  std::mt19937 rng(8);
  std::uniform_real_distribution<float> dist(-1, 1);
  std::vector<float> x(static_cast<size_t>(m * k)), w(static_cast<size_t>(n * k));
  std::vector<float> dy(static_cast<size_t>(m * n)), dx(x.size(), 0.0f), dw(w.size(), 0.0f);
  for (auto* v : {&x, &w, &dy})
    for (auto& e : *v) e = dist(rng);
  for (auto _ : state) {
    cpu::matmul_backward(dx.data(), dw.data(), nullptr, dy.data(), x.data(), w.data(), m, k, n,
                         &pool);
    benchmark::DoNotOptimize(dx.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOPS"] = benchmark::Counter(
      4.0 * static_cast<double>(m * n * k) * 1e-9 * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
  state.SetLabel(std::string(cpu::isa_name(cpu::active_isa())) + (bf16 ? " bf16" : ""));
  cpu::set_matmul_precision(cpu::MatmulPrecision::kFp32);
}

void backward_args(benchmark::internal::Benchmark* b) {
  // {m = tokens, k = in, n = out} of each weight: wq/wk/wv/wo, w_gate/w_up, w_down,
  // output; 15M (2048 tokens) then ~110M (1024 tokens).
  const int64_t shapes[][3] = {{2048, 288, 288}, {2048, 288, 768}, {2048, 768, 288},
                               {2048, 288, 32000}, {1024, 768, 768}, {1024, 768, 2048},
                               {1024, 2048, 768}, {1024, 768, 32000}};
  for (const auto& s : shapes)
    for (int threads : {1, 2})
      for (int bf16 : {0, 1}) b->Args({s[0], s[1], s[2], threads, bf16});
  b->ArgNames({"m", "k", "n", "threads", "bf16"})->UseRealTime()->Unit(benchmark::kMillisecond);
}
BENCHMARK(BM_MatmulBackward)->Apply(backward_args);

#if defined(__x86_64__) || defined(_M_X64)
// The FMA ceiling the GEMM is measured against: 12 independent chains of 8-lane
// fused multiply-adds on registers only (no memory), on each of `threads` threads,
// as GFLOP/s (2 per lane). The nominal peak (2 FMA pipes × 8 lanes × 2 × the
// all-core clock) assumes a clock the machine may not hold: on the 2-core Zen 3 VM
// of docs/PERFORMANCE.md this reads ~97 per thread (~3.0 GHz), not the 117 of 3.66.
__attribute__((target("avx2,fma"))) float fma_chains(int64_t iters) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(1.0f + static_cast<float>(i) * 1e-7f);
  const __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it)
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], b, c);
  __m256 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
  return _mm256_cvtss_f32(s);
}

void BM_FmaPeak(benchmark::State& state) {
  if (cpu::active_isa() < cpu::Isa::kAvx2) {
    state.SkipWithError("needs AVX2 + FMA");
    return;
  }
  const int threads = static_cast<int>(state.range(0));
  ThreadPool pool(threads);
  constexpr int64_t kIters = 20'000'000;
  std::vector<float> sink(static_cast<size_t>(threads));
  for (auto _ : state) {
    pool.run(threads, [&](int64_t t) { sink[static_cast<size_t>(t)] = fma_chains(kIters); });
    benchmark::DoNotOptimize(sink.data());
  }
  state.counters["GFLOPS"] = benchmark::Counter(
      static_cast<double>(threads) * kIters * 12 * 8 * 2 * 1e-9 *
          static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
}
BENCHMARK(BM_FmaPeak)->Apply(threads_args)->Unit(benchmark::kMillisecond);
#endif

}  // namespace
}  // namespace hanul

BENCHMARK_MAIN();
