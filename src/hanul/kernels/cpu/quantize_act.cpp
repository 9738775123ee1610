// Activation rows quantized for the integer dot products, exactly as ggml's
// reference quantizers (ggml-quants.c quantize_row_q8_0_ref / quantize_row_q8_K_ref),
// so hanul multiplies a GGUF model the way llama.cpp does. Scalar on purpose: it
// is O(k) per row against O(n·k) for the matmul that follows, and one code path
// keeps the blocks identical on every instruction set.
#include <cmath>
#include <cstring>

#include "hanul/kernels/cpu/ops.h"
#include "hanul/tensor/half.h"
#include "hanul/tensor/quant_blocks.h"

namespace hanul::cpu {

void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t k) {
  for (int64_t b = 0; b < k / kQK8_0; ++b, x += kQK8_0) {
    float amax = 0.0f;
    for (int l = 0; l < kQK8_0; ++l) amax = std::fmax(amax, std::fabs(x[l]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = f32_to_fp16(d);
    for (int l = 0; l < kQK8_0; ++l) y[b].qs[l] = static_cast<int8_t>(std::round(x[l] * id));
  }
}

// ggml's nearest_int: round half to even via the 1.5·2^23 trick (|v| < 2^22).
static int nearest_int(float v) {
  const float shifted = v + 12582912.0f;
  int32_t i;
  std::memcpy(&i, &shifted, 4);
  return (i & 0x007fffff) - 0x00400000;
}

void quantize_row_q8_K(const float* x, BlockQ8_K* y, int64_t k) {
  for (int64_t b = 0; b < k / kQK_K; ++b, x += kQK_K) {
    // The signed value of largest magnitude, so that it maps to exactly -127.
    float max = 0.0f, amax = 0.0f;
    for (int l = 0; l < kQK_K; ++l) {
      const float ax = std::fabs(x[l]);
      if (ax > amax) {
        amax = ax;
        max = x[l];
      }
    }
    if (amax == 0.0f) {
      std::memset(&y[b], 0, sizeof(BlockQ8_K));
      continue;
    }
    const float iscale = -127.0f / max;
    for (int l = 0; l < kQK_K; ++l) {
      const int v = nearest_int(iscale * x[l]);
      y[b].qs[l] = static_cast<int8_t>(v < 127 ? v : 127);
    }
    for (int g = 0; g < kQK_K / 16; ++g) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += y[b].qs[g * 16 + l];
      y[b].bsums[g] = static_cast<int16_t>(sum);
    }
    y[b].d = 1.0f / iscale;
  }
}

}  // namespace hanul::cpu
