#include "hanul/model/config.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <numbers>

#include "hanul/formats/gguf.h"

namespace hanul {
namespace {

const char* kLlama3 = R"({
  "architectures": ["LlamaForCausalLM"], "model_type": "llama",
  "vocab_size": 1000, "hidden_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4,
  "num_key_value_heads": 2, "intermediate_size": 512, "max_position_embeddings": 4096,
  "rms_norm_eps": 1e-6, "rope_theta": 500000.0,
  "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                   "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
  "bos_token_id": 1, "eos_token_id": [2, 3], "tie_word_embeddings": false })";

TEST(ModelConfig, ParsesHfConfig) {
  auto c = config_from_hf_json(kLlama3, "config.json");
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->arch, Arch::kLlama);
  EXPECT_EQ(c->n_embd, 256);
  EXPECT_EQ(c->head_dim, 64);  // hidden_size / num_attention_heads when head_dim is absent
  EXPECT_EQ(c->n_head_kv, 2);
  EXPECT_EQ(c->rope_scaling, RopeScalingType::kLlama3);
  EXPECT_FLOAT_EQ(c->rope_factor, 8.0f);
  EXPECT_EQ(c->rope_original_ctx, 64);
  EXPECT_EQ(c->bos_id, 1);
  EXPECT_EQ(c->eos_ids, (std::vector<int32_t>{2, 3}));
  EXPECT_EQ(c->rope_layout, RopeLayout::kHalves);
}

TEST(ModelConfig, RefusesBadConfigsClearly) {
  EXPECT_FALSE(config_from_hf_json("{not json", "x.json").ok());
  auto gpt2 = config_from_hf_json(R"({"model_type": "gpt2", "hidden_size": 8})", "x.json");
  ASSERT_FALSE(gpt2.ok());
  EXPECT_NE(gpt2.message().find("gpt2"), std::string::npos);
  auto missing = config_from_hf_json(R"({"model_type": "llama", "hidden_size": 8})", "x.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("num_hidden_layers"), std::string::npos) << missing.message();
  auto gqa = config_from_hf_json(R"({"model_type": "llama", "vocab_size": 10, "hidden_size": 12,
      "num_hidden_layers": 1, "num_attention_heads": 3, "num_key_value_heads": 2, "intermediate_size": 8})", "x");
  EXPECT_FALSE(gqa.ok());
  auto huge = config_from_hf_json(R"({"model_type": "llama", "vocab_size": 10, "hidden_size": 1e12,
      "num_hidden_layers": 1, "num_attention_heads": 1, "intermediate_size": 8})", "x");
  EXPECT_FALSE(huge.ok());
}

TEST(ModelConfig, Llama3InvFreqMatchesTransformersFormula) {
  auto c = config_from_hf_json(kLlama3, "config.json");
  ASSERT_TRUE(c.ok());
  auto inv = rope_inv_freq(*c);
  ASSERT_EQ(inv.size(), 32u);
  // transformers _compute_llama3_parameters, in double.
  for (int i = 0; i < 32; ++i) {
    double f = 1.0 / std::pow(500000.0, 2.0 * i / 64.0);
    double wavelen = 2 * std::numbers::pi / f, low = 64 / 1.0, high = 64 / 4.0, want;
    if (wavelen < high) {
      want = f;
    } else if (wavelen > low) {
      want = f / 8.0;
    } else {
      double s = (64 / wavelen - 1.0) / (4.0 - 1.0);
      want = (1 - s) * f / 8.0 + s * f;
    }
    EXPECT_NEAR(inv[i], want, 1e-6 * want) << i;
  }
}

TEST(ModelConfig, RoundTripsThroughGgufAndHfJson) {
  auto c = config_from_hf_json(kLlama3, "config.json");
  ASSERT_TRUE(c.ok());
  auto again = config_from_hf_json(config_to_hf_json(*c), "written");
  ASSERT_TRUE(again.ok()) << again.message();
  EXPECT_EQ(again->n_ff, c->n_ff);
  EXPECT_EQ(again->rope_scaling, c->rope_scaling);
  EXPECT_EQ(again->eos_ids, c->eos_ids);

  GgufWriter w;
  config_to_gguf(*c, w);
  Tensor emb = Tensor::allocate("token_embd.weight", DType::F32, {1000, 256});
  w.add_tensor(emb);
  std::string path = (std::filesystem::temp_directory_path() / "hanul_test_config.gguf").string();
  ASSERT_TRUE(w.write(path).ok());
  auto g = GgufFile::open(path);
  ASSERT_TRUE(g.ok()) << g.message();
  auto back = config_from_gguf(*g);
  ASSERT_TRUE(back.ok()) << back.message();
  EXPECT_EQ(back->n_embd, 256);
  EXPECT_EQ(back->n_head_kv, 2);
  EXPECT_EQ(back->n_vocab, 1000);
  EXPECT_FLOAT_EQ(back->rope_theta, 500000.0f);
  EXPECT_FLOAT_EQ(back->rms_eps, 1e-6f);
  EXPECT_EQ(back->rope_layout, RopeLayout::kPairs);
  EXPECT_TRUE(back->tie_embeddings);  // no output.weight in the file
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace hanul
