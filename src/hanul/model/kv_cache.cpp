#include "hanul/model/kv_cache.h"

namespace hanul {

KvCache::KvCache(const ModelConfig& cfg, int n_seq, int64_t n_ctx)
    : n_seq_(n_seq),
      n_ctx_(n_ctx),
      kv_dim_(cfg.n_head_kv * cfg.head_dim),
      len_(static_cast<size_t>(n_seq), 0),
      data_(static_cast<size_t>(cfg.n_layer) * n_seq * 2 * static_cast<size_t>(n_ctx * kv_dim_)) {}

}  // namespace hanul
