// AdamW and global-norm gradient clipping over the thread pool, with the results
// of ref/adamw.cpp (PyTorch 1.13's _single_tensor_adamw and clip_grad_norm_).
// AdamW is elementwise and memory-bound (it streams param, grad, m and v): ranges
// of the pool run the float32 expressions of ref:: in the same order (the build
// does not contract a·b + c into FMA), so the bits are ref::'s. The norm is the
// one reduction across tasks: fixed chunks of kNormChunk elements, each summed in
// double by one task, the chunk sums then added in order — the thread count
// decides only who sums a chunk, never what is summed.
#include <algorithm>
#include <cmath>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "hanul/base/thread_pool.h"
#include "hanul/kernels/cpu/ops_backward.h"

namespace hanul::cpu {

namespace {

// adamw() and adamw_step(): kStep scales the gradient (when scale != 1) and zeroes it.
template <bool kStep>
void adamw_impl(float* param, float* grad, float* m, float* v, int64_t n, const AdamWParams& hp,
                int64_t step, float scale, ThreadPool* pool) {
  // Elementwise, on fixed chunks: any thread count gives the same bits. Four lanes at
  // a time with SSE2 (in every x86-64): mul, add, sqrt and div are correctly rounded
  // per lane, so each lane's value is the scalar expression's, op for op — and the
  // vector loop is ~4× the scalar one, which a compiler will not vectorise itself
  // (std::sqrt may set errno). The tail and other ISAs run ref::adamw.
  const ref::AdamWScalars c = ref::adamw_scalars(hp, step);
  const bool scaled = kStep && scale != 1.0f;
  parallel_for(pool, n, 1 << 15, [&](int64_t i0, int64_t i1) {
    int64_t i = i0;
#if defined(__SSE2__)
    const __m128 decay = _mm_set1_ps(c.decay), b1 = _mm_set1_ps(c.b1), omb1 = _mm_set1_ps(c.one_minus_b1);
    const __m128 b2 = _mm_set1_ps(c.b2), omb2 = _mm_set1_ps(c.one_minus_b2);
    const __m128 neg_step = _mm_set1_ps(c.neg_step_size), bc2_sqrt = _mm_set1_ps(c.bc2_sqrt);
    const __m128 eps = _mm_set1_ps(c.eps), vscale = _mm_set1_ps(scale);
    for (; i + 4 <= i1; i += 4) {
      __m128 g = _mm_loadu_ps(grad + i);
      if (scaled) g = _mm_mul_ps(g, vscale);  // clip_grad_norm's g *= coef
      __m128 p = _mm_mul_ps(_mm_loadu_ps(param + i), decay);
      const __m128 mi = _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(m + i), b1), _mm_mul_ps(g, omb1));
      const __m128 vi =
          _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(v + i), b2), _mm_mul_ps(_mm_mul_ps(omb2, g), g));
      const __m128 denom = _mm_add_ps(_mm_div_ps(_mm_sqrt_ps(vi), bc2_sqrt), eps);
      p = _mm_add_ps(p, _mm_div_ps(_mm_mul_ps(neg_step, mi), denom));
      _mm_storeu_ps(m + i, mi);
      _mm_storeu_ps(v + i, vi);
      _mm_storeu_ps(param + i, p);
      if (kStep) _mm_storeu_ps(grad + i, _mm_setzero_ps());
    }
#endif
    if (i < i1) {
      if (scaled)
        for (int64_t j = i; j < i1; ++j) grad[j] *= scale;
      ref::adamw(param + i, grad + i, m + i, v + i, i1 - i, hp, step);
      if (kStep) std::fill(grad + i, grad + i1, 0.0f);
    }
  });
}

}  // namespace

void adamw(float* param, const float* grad, float* m, float* v, int64_t n, const AdamWParams& hp,
           int64_t step, ThreadPool* pool) {
  // kStep = false never writes through grad
  adamw_impl<false>(param, const_cast<float*>(grad), m, v, n, hp, step, 1.0f, pool);
}

void adamw_step(float* param, float* grad, float* m, float* v, int64_t n, const AdamWParams& hp,
                int64_t step, float grad_scale, ThreadPool* pool) {
  adamw_impl<true>(param, grad, m, v, n, hp, step, grad_scale, pool);
}

namespace {

// Σ x² in double with 4 independent sums (vectorisable without reassociation).
double sum_sq_f64(const float* x, int64_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += static_cast<double>(x[i]) * x[i];
    s1 += static_cast<double>(x[i + 1]) * x[i + 1];
    s2 += static_cast<double>(x[i + 2]) * x[i + 2];
    s3 += static_cast<double>(x[i + 3]) * x[i + 3];
  }
  for (; i < n; ++i) s0 += static_cast<double>(x[i]) * x[i];
  return (s0 + s1) + (s2 + s3);
}

struct Chunk {
  const float* data;
  int64_t n;
};

}  // namespace

float grad_norm(const GradSpan* grads, int n_grads, ThreadPool* pool) {
  std::vector<Chunk> chunks;
  for (int g = 0; g < n_grads; ++g)
    for (int64_t i = 0; i < grads[g].n; i += kNormChunk)
      chunks.push_back({grads[g].data + i, std::min(kNormChunk, grads[g].n - i)});
  std::vector<double> sums(chunks.size());
  parallel_for(pool, static_cast<int64_t>(chunks.size()), 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c)
      sums[static_cast<size_t>(c)] = sum_sq_f64(chunks[static_cast<size_t>(c)].data, chunks[static_cast<size_t>(c)].n);
  });
  double sum_sq = 0.0;
  for (double s : sums) sum_sq += s;
  return static_cast<float>(std::sqrt(sum_sq));
}

float clip_scale(float norm, float max_norm) {
  const float coef = max_norm / (norm + 1e-6f);
  return coef < 1.0f ? coef : 1.0f;  // torch multiplies by clamp(coef, max=1)
}

float clip_grad_norm(const GradSpan* grads, int n_grads, float max_norm, ThreadPool* pool) {
  const float norm = grad_norm(grads, n_grads, pool);
  const float coef = clip_scale(norm, max_norm);
  if (coef != 1.0f)  // a factor of 1 changes nothing
    for (int g = 0; g < n_grads; ++g) {
      float* d = grads[g].data;
      parallel_for(pool, grads[g].n, 1 << 15, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) d[i] *= coef;
      });
    }
  return norm;
}

}  // namespace hanul::cpu
