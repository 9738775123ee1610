#include "hanul/model/weights.h"

#include <gtest/gtest.h>

#include <cstring>
#include <set>

namespace hanul {
namespace {

TEST(Weights, ForEachTensorNamesEverySlotOnce) {
  ModelConfig c;
  c.arch = Arch::kQwen2;
  c.qkv_bias = true;
  c.n_vocab = 10, c.n_embd = 8, c.n_layer = 2, c.n_head = 2, c.n_head_kv = 1, c.head_dim = 4, c.n_ff = 12;
  Weights w;
  std::set<std::string> gguf, hf;
  int permuted = 0;
  for_each_tensor(c, w, [&](TensorSlot& s) {
    EXPECT_TRUE(gguf.insert(s.gguf_name).second) << s.gguf_name;
    if (!s.hf_name.empty()) EXPECT_TRUE(hf.insert(s.hf_name).second) << s.hf_name;
    permuted += s.rope_permute_heads > 0;
  });
  EXPECT_EQ(w.layers.size(), 2u);
  EXPECT_EQ(gguf.size(), 3u + 2u * 12u + 1u);  // embd, norm, output + 12 per layer + rope_freqs
  EXPECT_TRUE(gguf.count("blk.1.attn_k.bias"));
  EXPECT_TRUE(hf.count("model.layers.1.self_attn.k_proj.bias"));
  EXPECT_EQ(permuted, 0);  // qwen2 keeps the NeoX layout in GGUF too
}

TEST(Weights, PermuteQkRowsMatchesLlamaCppAndInverts) {
  // 2 heads of head_dim 4, 3 columns: HF row r of head h holds value h*100 + r.
  Tensor t = Tensor::allocate("q", DType::F32, {8, 3});
  float* p = static_cast<float*>(t.mutable_data());
  for (int r = 0; r < 8; ++r)
    for (int c = 0; c < 3; ++c) p[r * 3 + c] = static_cast<float>(r * 10 + c);
  Tensor g = permute_qk_rows(t, 2, /*to_gguf=*/true);
  const float* q = static_cast<const float*>(g.data);
  // reshape(2 heads, 2, 2, 3).swapaxes(1, 2): GGUF row order within a head is 0, 2, 1, 3.
  const int order[8] = {0, 2, 1, 3, 4, 6, 5, 7};
  for (int r = 0; r < 8; ++r) EXPECT_EQ(q[r * 3], static_cast<float>(order[r] * 10)) << r;
  Tensor back = permute_qk_rows(g, 2, /*to_gguf=*/false);
  EXPECT_EQ(0, std::memcmp(back.data, t.data, static_cast<size_t>(t.nbytes())));
}

TEST(Weights, LoadRefusesMissingAndMisshapenModels) {
  auto missing = load_model("/nonexistent/model.gguf");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("/nonexistent/model.gguf"), std::string::npos);
  auto dir = load_model("/tmp");  // a folder without config.json or safetensors
  EXPECT_FALSE(dir.ok());
}

}  // namespace
}  // namespace hanul
