// The fast CPU kernels: the same functions and signatures as kernels/ref/ops.h
// (see there for the layouts), in namespace hanul::cpu, with SIMD inner loops
// chosen at run time (AVX-512 + VNNI, AVX2 + FMA + F16C, or portable scalar) and
// work split over the thread pool. Each output element is computed by exactly
// one task in a fixed order, so results never depend on the thread count.
//
// Quantized weights (Q8_0, Q4_0, Q4_K) are multiplied the way ggml does it
// (ggml-cpu.c type_traits vec_dot_type): the activation row is first quantized
// to Q8_0 (for Q8_0/Q4_0 weights) or Q8_K (for Q4_K) and the blocks are dotted
// with integer arithmetic. Other quantized types dequantize each weight row to
// float32 and take float dot products.
#pragma once

#include <cstdint>

#include "hanul/kernels/ref/ops.h"
#include "hanul/tensor/dtype.h"

namespace hanul {
struct BlockQ8_0;
struct BlockQ8_K;

namespace cpu {

// --- the ops of ref/ops.h -------------------------------------------------------

void matmul(const float* x, int64_t m, int64_t k, const void* w, DType wt, int64_t n,
            const float* bias, float* y, ThreadPool* pool);
void rmsnorm(float* out, const float* x, const float* weight, int64_t rows, int64_t n, float eps);
void rope(float* x, int64_t n_tokens, int n_heads, int head_dim, const int32_t* positions,
          const float* inv_freq, RopeLayout layout);
void softmax(float* x, int64_t rows, int64_t n);
void swiglu(float* out, const float* gate, const float* up, int64_t n);
void attention(float* out, const float* q, int64_t n_tokens, const float* k, const float* v,
               int64_t n_kv, int n_head, int n_head_kv, int head_dim, int64_t pos0, float scale,
               ThreadPool* pool);

// --- small vector helpers the model may use ---------------------------------------

float dot(const float* a, const float* b, int64_t n);            // Σ a[i]·b[i]
void add(float* out, const float* a, const float* b, int64_t n);  // out = a + b (may alias)
void axpy(float* y, float a, const float* x, int64_t n);          // y += a·x
void scale(float* x, float a, int64_t n);                         // x *= a

// Activation quantizers, bit-identical to ggml's quantize_row_q8_0_ref and
// quantize_row_q8_K_ref (ggml-quants.c); k must be a multiple of 32 / 256.
void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t k);
void quantize_row_q8_K(const float* x, BlockQ8_K* y, int64_t k);

// True when matmul has an integer (quantized-activation) path for weights of type t.
bool matmul_quantizes_activations(DType t);

// --- instruction-set selection ----------------------------------------------------

enum class Isa { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

// The best set this CPU (and this build) supports.
Isa detected_isa();
// The set the kernels use now: min(detected, the cap set below).
Isa active_isa();
// Caps the instruction set, so tests can run every path the machine has
// against the reference. Not thread-safe with kernels running.
void set_max_isa(Isa isa);
const char* isa_name(Isa isa);

// --- float32 matmul precision ------------------------------------------------------

// How the GEMM multiplies float32 operands (matmul for m >= 64 rows with F32 weights,
// matmul_backward, attention's products): kFp32, float32 products (the default); or
// kBf16, both operands rounded to bf16 (to nearest even) and the products summed in
// float32 (AVX512_BF16's vdpbf16ps, twice the multiply-adds of an FMA a cycle on Zen
// 4). What torch.set_float32_matmul_precision("medium") allows; training keeps its
// weights, gradients and optimizer state in float32 (train_config.h's
// matmul_precision). Still deterministic: the same bits for any thread count.
enum class MatmulPrecision { kFp32, kBf16 };

// True where kBf16 runs as bf16: the active ISA is AVX-512 and the CPU has AVX512_BF16.
// Elsewhere set_matmul_precision(kBf16) is refused (returns false, nothing changes).
bool bf16_matmul_supported();
bool set_matmul_precision(MatmulPrecision p);
MatmulPrecision matmul_precision();

}  // namespace cpu
}  // namespace hanul
