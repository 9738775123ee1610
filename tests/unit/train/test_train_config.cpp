#include "hanul/train/train_config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace hanul {
namespace {

namespace fs = std::filesystem;

std::string write_temp(const std::string& name, const std::string& text) {
  const fs::path p = fs::temp_directory_path() / ("hanul_test_train_config_" + std::to_string(getpid()) + name);
  std::ofstream(p, std::ios::binary) << text;
  return p.string();
}

TEST(TrainConfig, FlatYamlWithCommentsAndQuotes) {
  TrainConfig c;
  const std::string p = write_temp(".yaml",
                                   "# a run\n---\ndata: \"runs/my data\"  # quoted\nout: 'it''s'\ndim: 64\n"
                                   "lr: 3e-4   # peak\ntie_embeddings: false\nseed: 42\n\n");
  ASSERT_TRUE(load_train_config_file(c, p).ok());
  EXPECT_EQ(c.data, "runs/my data");
  EXPECT_EQ(c.out, "it's");
  EXPECT_EQ(c.dim, 64);
  EXPECT_DOUBLE_EQ(c.lr, 3e-4);
  EXPECT_FALSE(c.tie_embeddings);
  EXPECT_EQ(c.seed, 42u);
  EXPECT_EQ(c.n_layers, TrainConfig{}.n_layers);  // keys it does not name keep their values
  fs::remove(p);
}

TEST(TrainConfig, YamlErrorsNameTheLine) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"dim: 32\nmodel:\n  dim: 4\n", ":2: a value is missing"},
      {"dim: 32\n  steps: 3\n", ":2: indented line"},
      {"dim 32\n", ":1: expected 'key: value'"},
      {"steps: [1]\n", ":1: only plain scalars"},
      {"out: \"open\n", ":1: unterminated"},
      {"dim: 3.5\n", "'dim' must be an integer"},
      {"seed: -1\n", "'seed' must be a non-negative integer"},
      {"lr: fast\n", "'lr' must be a number"},
      {"warmup: 3\n", "unknown key 'warmup'"},
  };
  for (const auto& [text, want] : cases) {
    TrainConfig c;
    const std::string p = write_temp(".bad.yaml", text);
    const Status st = load_train_config_file(c, p);
    ASSERT_FALSE(st.ok()) << text;
    EXPECT_NE(st.message().find(want), std::string::npos) << st.message();
    fs::remove(p);
  }
}

TEST(TrainConfig, JsonRoundTripKeepsEveryKey) {
  TrainConfig c;
  c.data = "d";
  c.out = "o";
  c.dim = 96;
  c.lr = 1.2345678901234567e-4;
  c.seed = 18446744073709551615ull;
  c.shuffle = false;
  auto back = parse_train_config_json(train_config_to_json(c), "mem");
  ASSERT_TRUE(back.ok()) << back.message();
  EXPECT_EQ(train_config_to_json(*back), train_config_to_json(c));
  EXPECT_EQ(back->lr, c.lr);  // bit-exact: a resumed run has the same schedule
  EXPECT_EQ(back->seed, c.seed);
  // A JSON config file works as well as YAML; nested values are refused.
  TrainConfig j;
  const std::string p = write_temp(".json", R"({"dim": 48, "lr": 0.001, "shuffle": true})");
  ASSERT_TRUE(load_train_config_file(j, p).ok());
  EXPECT_EQ(j.dim, 48);
  const std::string bad = write_temp(".nested.json", R"({"dim": {"x": 1}})");
  EXPECT_FALSE(load_train_config_file(j, bad).ok());
  fs::remove(p);
  fs::remove(bad);
}

TEST(TrainConfig, FlagsUseTheSameKeys) {
  TrainConfig c;
  EXPECT_TRUE(set_train_config_key(c, "batch_size", "12").ok());
  EXPECT_EQ(c.batch_size, 12);
  EXPECT_FALSE(set_train_config_key(c, "batch", "12").ok());
  EXPECT_FALSE(set_train_config_key(c, "threads", "99999999999").ok());
  size_t n = 0;
  for (const TrainConfigKey& k : train_config_keys()) {
    ++n;
    EXPECT_NE(std::string(k.help), "");
  }
  EXPECT_GT(n, 25u);
}

TEST(TrainConfig, Validation) {
  TrainConfig c;
  c.data = "d";
  c.out = "o";
  EXPECT_TRUE(validate_train_config(c, 1).ok());
  EXPECT_TRUE(validate_train_config(c, 2).ok());  // 8 rows over 2 ranks
  EXPECT_FALSE(validate_train_config(c, 3).ok());
  TrainConfig bad = c;
  bad.dim = 290;  // not a multiple of 6 heads
  EXPECT_FALSE(validate_train_config(bad, 1).ok());
  bad = c;
  bad.warmup_steps = bad.steps + 1;
  EXPECT_FALSE(validate_train_config(bad, 1).ok());
  bad = c;
  bad.min_lr = 2 * bad.lr;
  EXPECT_FALSE(validate_train_config(bad, 1).ok());
  bad = c;
  bad.n_kv_heads = 4;  // 6 heads do not share 4 kv heads
  EXPECT_FALSE(validate_train_config(bad, 1).ok());
  bad = c;
  bad.data.clear();
  EXPECT_FALSE(validate_train_config(bad, 1).ok());
  bad = c;
  bad.matmul_precision = "fp16";
  EXPECT_FALSE(validate_train_config(bad, 1).ok());
  bad.matmul_precision = "bf16";
  EXPECT_TRUE(validate_train_config(bad, 1).ok());
}

TEST(TrainConfig, ModelConfigForIsAValidLlama) {
  TrainConfig t;
  t.n_kv_heads = 2;
  const ModelConfig m = model_config_for(t, 8192, -1, 3);
  EXPECT_TRUE(m.validate().ok());
  EXPECT_EQ(m.n_vocab, 8192);
  EXPECT_EQ(m.head_dim, 48);
  EXPECT_EQ(m.n_head_kv, 2);
  EXPECT_EQ(m.n_ctx_train, t.seq_len);
  EXPECT_EQ(m.eos_ids, std::vector<int32_t>{3});
  EXPECT_EQ(m.rope_layout, RopeLayout::kHalves);
}

}  // namespace
}  // namespace hanul
