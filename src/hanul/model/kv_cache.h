// The key/value cache: for each layer and each sequence slot, the rotated keys
// and the values of every position seen so far, float32, laid out as the
// attention kernel reads them: [n_ctx, n_head_kv * head_dim]. (Paging and
// prefix sharing come with the serving scheduler.)
#pragma once

#include <cstdint>
#include <vector>

#include "hanul/base/result.h"
#include "hanul/model/config.h"

namespace hanul {

class KvCache {
 public:
  KvCache(const ModelConfig& cfg, int n_seq, int64_t n_ctx);

  int n_seq() const { return n_seq_; }
  int64_t n_ctx() const { return n_ctx_; }
  int64_t kv_dim() const { return kv_dim_; }
  int64_t seq_len(int seq) const { return len_[static_cast<size_t>(seq)]; }
  void set_seq_len(int seq, int64_t len) { len_[static_cast<size_t>(seq)] = len; }
  void clear(int seq) { set_seq_len(seq, 0); }

  float* k(int64_t il, int seq) { return data_.data() + offset(il, seq, 0); }
  float* v(int64_t il, int seq) { return data_.data() + offset(il, seq, 1); }

 private:
  size_t offset(int64_t il, int seq, int which) const {
    return ((static_cast<size_t>(il) * n_seq_ + seq) * 2 + which) * static_cast<size_t>(n_ctx_ * kv_dim_);
  }
  int n_seq_;
  int64_t n_ctx_;
  int64_t kv_dim_;
  std::vector<int64_t> len_;
  std::vector<float> data_;
};

}  // namespace hanul
