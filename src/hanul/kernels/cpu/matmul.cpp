// y[m, n] = x[m, k] · W[n, k]ᵀ for every weight dtype.
//
// Float weights (F32, F16, BF16) with m >= gemm::kMinRows (training, prompt
// processing) go to the packed, register-tiled GEMM of gemm.h. Everything else
// takes the row-dot path below (gemm::matmul_row_dots).
//
// Row-dot path: work is split over output columns (weight rows): each task owns a range of j
// and computes y[i, j] for every i, so no two tasks write the same element and
// every element is one dot product in a fixed order — the thread count cannot
// change a bit of the result. Within a task the loop is tiled: a tile of kTileW
// weight rows is swept over tiles of kTileX activation rows, so a weight row is
// fetched from memory once and then reused from L1/L2 for the whole tile of x;
// within a tile, 4 activation rows at a time share each weight load and unpack
// (simd::Kernels::dot4_*, bit-identical to the single-row dots, so a row's result
// does not depend on m either). For m == 1 (decode) this is the memory-bound
// matvec, one pass over W.
#include <algorithm>
#include <cassert>
#include <vector>

#include "hanul/base/thread_pool.h"
#include "hanul/kernels/cpu/gemm.h"
#include "hanul/kernels/cpu/ops.h"
#include "hanul/kernels/cpu/simd.h"
#include "hanul/tensor/quant_blocks.h"
#include "hanul/tensor/quantize.h"

namespace hanul::cpu {
namespace {

constexpr int64_t kTileW = 16;  // weight rows per tile
constexpr int64_t kTileX = 32;  // activation rows per tile

// Rows of W per task chunk: at least 16 so a chunk's fixed costs are amortised.
constexpr int64_t kGrain = 16;

// prep(j, scratch) returns weight row j in the form dot() takes (a pointer into W,
// or a row dequantized into the task's scratch); dot(i, row) is y[i, j] sans bias;
// dot4(i, row, out) writes y[i + r, j] sans bias to out[r] for r < 4.
template <class Prep, class Dot, class Dot4>
void tiled(int64_t m, int64_t n, const float* bias, float* y, ThreadPool* pool, int64_t scratch_len,
           Prep prep, Dot dot, Dot4 dot4) {
  parallel_for(pool, n, kGrain, [&](int64_t j0, int64_t j1) {
    std::vector<float> scratch(static_cast<size_t>(scratch_len));
    for (int64_t jb = j0; jb < j1; jb += kTileW) {
      const int64_t je = std::min(j1, jb + kTileW);
      for (int64_t ib = 0; ib < m; ib += kTileX) {
        const int64_t ie = std::min(m, ib + kTileX);
        for (int64_t j = jb; j < je; ++j) {
          const void* row = prep(j, scratch.data());
          const float b = bias ? bias[j] : 0.0f;
          int64_t i = ib;
          for (; i + 4 <= ie; i += 4) {
            float out[4];
            dot4(i, row, out);
            for (int r = 0; r < 4; ++r) y[(i + r) * n + j] = out[r] + b;
          }
          for (; i < ie; ++i) y[i * n + j] = dot(i, row) + b;
        }
      }
    }
  });
}

template <class Block, class Quantize>
std::vector<Block> quantize_rows(const float* x, int64_t m, int64_t k, int64_t qk, ThreadPool* pool,
                                 Quantize quantize) {
  const int64_t nb = k / qk;
  std::vector<Block> xq(static_cast<size_t>(m * nb));
  parallel_for(pool, m, 4, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) quantize(x + i * k, xq.data() + i * nb, k);
  });
  return xq;
}

}  // namespace

bool matmul_quantizes_activations(DType t) {
  return t == DType::Q8_0 || t == DType::Q4_0 || t == DType::Q4_K;
}

void matmul(const float* x, int64_t m, int64_t k, const void* w, DType wt, int64_t n,
            const float* bias, float* y, ThreadPool* pool) {
  if (m >= gemm::kMinRows && gemm::supports(wt)) {
    gemm::matmul(x, m, k, w, wt, n, bias, y, pool);
    return;
  }
  gemm::matmul_row_dots(x, m, k, w, wt, n, bias, y, pool);
}

void gemm::matmul_row_dots(const float* x, int64_t m, int64_t k, const void* w, DType wt,
                           int64_t n, const float* bias, float* y, ThreadPool* pool) {
  if (m <= 0 || n <= 0) return;
  const simd::Kernels& kr = simd::kernels();
  const auto* wb = static_cast<const uint8_t*>(w);
  const int64_t wrb = row_bytes(wt, k);
  auto w_row = [wb, wrb](int64_t j, float*) -> const void* { return wb + j * wrb; };

  switch (wt) {
    case DType::F32:
      tiled(m, n, bias, y, pool, 0, w_row, [&](int64_t i, const void* r) {
        return kr.dot_f32(x + i * k, static_cast<const float*>(r), k);
      }, [&](int64_t i, const void* r, float* out) {
        kr.dot4_f32(x + i * k, k, static_cast<const float*>(r), k, out);
      });
      return;
    case DType::F16:
      tiled(m, n, bias, y, pool, 0, w_row, [&](int64_t i, const void* r) {
        return kr.dot_f16(x + i * k, static_cast<const uint16_t*>(r), k);
      }, [&](int64_t i, const void* r, float* out) {
        kr.dot4_f16(x + i * k, k, static_cast<const uint16_t*>(r), k, out);
      });
      return;
    case DType::BF16:
      tiled(m, n, bias, y, pool, 0, w_row, [&](int64_t i, const void* r) {
        return kr.dot_bf16(x + i * k, static_cast<const uint16_t*>(r), k);
      }, [&](int64_t i, const void* r, float* out) {
        kr.dot4_bf16(x + i * k, k, static_cast<const uint16_t*>(r), k, out);
      });
      return;
    case DType::Q8_0:
    case DType::Q4_0: {
      const int64_t nb = k / kQK8_0;
      auto xq = quantize_rows<BlockQ8_0>(x, m, k, kQK8_0, pool, quantize_row_q8_0);
      const BlockQ8_0* xqp = xq.data();
      if (wt == DType::Q8_0) {
        tiled(m, n, bias, y, pool, 0, w_row, [&](int64_t i, const void* r) {
          return kr.dot_q8_0(xqp + i * nb, static_cast<const BlockQ8_0*>(r), nb);
        }, [&](int64_t i, const void* r, float* out) {
          kr.dot4_q8_0(xqp + i * nb, nb, static_cast<const BlockQ8_0*>(r), nb, out);
        });
      } else {
        tiled(m, n, bias, y, pool, 0, w_row, [&](int64_t i, const void* r) {
          return kr.dot_q4_0(xqp + i * nb, static_cast<const BlockQ4_0*>(r), nb);
        }, [&](int64_t i, const void* r, float* out) {
          kr.dot4_q4_0(xqp + i * nb, nb, static_cast<const BlockQ4_0*>(r), nb, out);
        });
      }
      return;
    }
    case DType::Q4_K: {
      const int64_t nb = k / kQK_K;
      auto xq = quantize_rows<BlockQ8_K>(x, m, k, kQK_K, pool, quantize_row_q8_K);
      const BlockQ8_K* xqp = xq.data();
      tiled(m, n, bias, y, pool, 0, w_row, [&](int64_t i, const void* r) {
        return kr.dot_q4_K(xqp + i * nb, static_cast<const BlockQ4_K*>(r), nb);
      }, [&](int64_t i, const void* r, float* out) {
        kr.dot4_q4_K(xqp + i * nb, nb, static_cast<const BlockQ4_K*>(r), nb, out);
      });
      return;
    }
    default: {
      // Every other type: dequantize the weight row once per tile of x, then float dots.
      auto dequant = [&](int64_t j, float* scratch) -> const void* {
        Status st = dequantize_row(wt, wb + j * wrb, scratch, k);
        assert(st.ok() && "cpu::matmul: weight dtype has no dequantize_row");
        (void)st;
        return scratch;
      };
      tiled(m, n, bias, y, pool, k, dequant, [&](int64_t i, const void* r) {
        return kr.dot_f32(x + i * k, static_cast<const float*>(r), k);
      }, [&](int64_t i, const void* r, float* out) {
        kr.dot4_f32(x + i * k, k, static_cast<const float*>(r), k, out);
      });
      return;
    }
  }
}

}  // namespace hanul::cpu
