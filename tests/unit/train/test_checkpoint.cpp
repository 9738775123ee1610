#include "random_ids.h"

#include <gtest/gtest.h>

#include "temp_dir.h"
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "hanul/base/mapped_file.h"
#include "hanul/base/thread_pool.h"
#include "hanul/train/checkpoint.h"
#include "hanul/train/schedule.h"

namespace hanul {
namespace {

namespace fs = std::filesystem;

ModelConfig tiny() {
  ModelConfig c;
  c.n_vocab = 61;
  c.n_embd = 32;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_head_kv = 2;
  c.head_dim = 8;
  c.n_ff = 48;
  c.n_ctx_train = 32;
  c.rms_eps = 1e-6f;
  return c;
}

using testing::random_ids;


// One step of the run: the batch depends on the step (as a data position would), lr on the
// schedule.
void step(TrainableModel& m, ThreadPool* pool) {
  const int64_t B = 2, T = 8;
  std::vector<int32_t> ids =
      random_ids(B * (T + 1), m.config().n_vocab, 100 + static_cast<uint32_t>(m.step()));
  const LrSchedule sched{2, 5, 1e-2, 1e-3};
  AdamWParams hp;
  hp.lr = sched.lr(m.step());
  auto r = train_step(m, {ids, B, T + 1}, hp, 1.0f, 2, pool);
  ASSERT_TRUE(r.ok()) << r.message();
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

void expect_same_state(const TrainableModel& a, const TrainableModel& b) {
  EXPECT_EQ(a.step(), b.step());
  ASSERT_EQ(a.params().size(), b.params().size());
  for (size_t i = 0; i < a.params().size(); ++i) {
    const Param &p = a.params()[i], &q = b.params()[i];
    EXPECT_EQ(p.gguf_name, q.gguf_name);
    EXPECT_EQ(p.shape, q.shape);
    EXPECT_TRUE(same_bits(p.value, q.value)) << p.gguf_name;
    EXPECT_TRUE(same_bits(p.m, q.m)) << p.gguf_name;
    EXPECT_TRUE(same_bits(p.v, q.v)) << p.gguf_name;
  }
}

TrainableModel trained(int steps, ThreadPool* pool) {
  auto m = TrainableModel::init_random(tiny(), 5);
  EXPECT_TRUE(m.ok()) << m.message();
  for (int i = 0; i < steps; ++i) step(*m, pool);
  return std::move(*m);
}

TrainState some_state() {
  TrainState s;
  s.data_position = 123456789012;
  s.rng_seed = 0xfedcba9876543210ull;
  s.rng_counter = 42;
  s.config_json = R"({"steps": 5, "lr": 0.01})";
  return s;
}

TEST(Checkpoint, SaveLoadIsBitIdentical) {
  TempDir tmp("hanul_ckpt");
  ThreadPool pool(2);
  TrainableModel m = trained(2, &pool);
  const std::string dir = (tmp.path / "ckpt").string();
  ASSERT_TRUE(save_checkpoint(dir, m, some_state()).ok());
  EXPECT_FALSE(fs::exists(dir + ".tmp"));
  auto c = load_checkpoint(dir);
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->model.step(), 2);
  expect_same_state(m, c->model);
  EXPECT_EQ(c->state.data_position, 123456789012);
  EXPECT_EQ(c->state.rng_seed, 0xfedcba9876543210ull);
  EXPECT_EQ(c->state.rng_counter, 42u);
  EXPECT_EQ(c->state.config_json, some_state().config_json);
  // Saving over an existing checkpoint replaces it.
  step(m, &pool);
  ASSERT_TRUE(save_checkpoint(dir + "/", m, some_state()).ok());
  auto c2 = load_checkpoint(dir);
  ASSERT_TRUE(c2.ok()) << c2.message();
  expect_same_state(m, c2->model);
}

TEST(Checkpoint, ResumeReachesTheSameWeights) {
  TempDir tmp("hanul_ckpt");
  ThreadPool pool(2);
  const std::string dir = (tmp.path / "ckpt").string();
  TrainableModel a = trained(3, &pool);
  ASSERT_TRUE(save_checkpoint(dir, a, some_state()).ok());
  step(a, &pool);
  step(a, &pool);
  auto b = load_checkpoint(dir);
  ASSERT_TRUE(b.ok()) << b.message();
  step(b->model, &pool);
  step(b->model, &pool);
  EXPECT_EQ(b->model.step(), 5);
  expect_same_state(a, b->model);
  // And the run did move: the resumed weights differ from the checkpoint's.
  auto c = load_checkpoint(dir);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(same_bits(c->model.params()[0].value, a.params()[0].value));
}

TEST(Checkpoint, TruncatedOrCorruptIsRefused) {
  TempDir tmp("hanul_ckpt");
  ThreadPool pool(2);
  TrainableModel m = trained(1, &pool);
  const std::string dir = (tmp.path / "ckpt").string();
  ASSERT_TRUE(save_checkpoint(dir, m, some_state()).ok());
  const std::string model_file = dir + "/model.safetensors";
  fs::resize_file(model_file, fs::file_size(model_file) - 100);
  auto r = load_checkpoint(dir);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("model.safetensors"), std::string::npos) << r.message();
  EXPECT_NE(r.message().find("truncated"), std::string::npos) << r.message();

  ASSERT_TRUE(save_checkpoint(dir, m, some_state()).ok());
  {  // one flipped byte in the middle of the optimizer state
    const std::string f = dir + "/optimizer.safetensors";
    std::fstream io(f, std::ios::in | std::ios::out | std::ios::binary);
    io.seekg(static_cast<std::streamoff>(fs::file_size(f) / 2));
    char ch = 0;
    io.read(&ch, 1);
    ch ^= 0x10;
    io.seekp(static_cast<std::streamoff>(fs::file_size(f) / 2));
    io.write(&ch, 1);
  }
  r = load_checkpoint(dir);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("corrupt"), std::string::npos) << r.message();

  fs::remove(dir + "/manifest.json");
  r = load_checkpoint(dir);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("manifest.json"), std::string::npos) << r.message();
  EXPECT_FALSE(load_checkpoint((tmp.path / "nothing").string()).ok());
}

TEST(Checkpoint, InterruptedSaveKeepsThePreviousCheckpoint) {
  TempDir tmp("hanul_ckpt");
  ThreadPool pool(2);
  TrainableModel m = trained(2, &pool);
  const std::string dir = (tmp.path / "ckpt").string();
  ASSERT_TRUE(save_checkpoint(dir, m, some_state()).ok());
  // A later save killed half-way: its temp folder holds some files and no manifest.
  step(m, &pool);
  fs::create_directories(dir + ".tmp");
  { std::ofstream(dir + ".tmp/model.safetensors") << "partial"; }
  auto c = load_checkpoint(dir);
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->model.step(), 2);
  TrainableModel two = trained(2, &pool);
  expect_same_state(two, c->model);
  // The next save clears the leftover and publishes the new state.
  ASSERT_TRUE(save_checkpoint(dir, m, some_state()).ok());
  EXPECT_FALSE(fs::exists(dir + ".tmp"));
  auto d = load_checkpoint(dir);
  ASSERT_TRUE(d.ok()) << d.message();
  expect_same_state(m, d->model);
}

// Tensors whose checksums are right but whose shapes do not fit the config:
// model A's tensor files under model B's config (wider feed-forward).
TEST(Checkpoint, ShapeMismatchIsRefused) {
  TempDir tmp("hanul_ckpt");
  ThreadPool pool(2);
  const std::string a_dir = (tmp.path / "a").string(), b_dir = (tmp.path / "b").string();
  TrainableModel a = trained(1, &pool);
  ModelConfig wide = tiny();
  wide.n_ff = 64;
  auto b = TrainableModel::init_random(wide, 5);
  ASSERT_TRUE(b.ok()) << b.message();
  ASSERT_TRUE(save_checkpoint(a_dir, a, some_state()).ok());
  ASSERT_TRUE(save_checkpoint(b_dir, *b, some_state()).ok());
  auto a_manifest = nlohmann::json::parse(*read_text_file(a_dir + "/manifest.json"));
  auto b_manifest = nlohmann::json::parse(*read_text_file(b_dir + "/manifest.json"));
  for (const char* f : {"model.safetensors", "optimizer.safetensors"}) {
    fs::copy_file(a_dir + "/" + f, b_dir + "/" + f, fs::copy_options::overwrite_existing);
    b_manifest["files"][f] = a_manifest["files"][f];
  }
  { std::ofstream(b_dir + "/manifest.json") << b_manifest.dump(); }
  auto r = load_checkpoint(b_dir);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("has shape [48, 32], the config implies [64, 32]"), std::string::npos)
      << r.message();
}

TEST(Checkpoint, BadRunConfigIsRefused) {
  TempDir tmp("hanul_ckpt");
  ThreadPool pool(2);
  TrainableModel m = trained(0, &pool);
  TrainState s = some_state();
  s.config_json = "{not json";
  EXPECT_FALSE(save_checkpoint((tmp.path / "ckpt").string(), m, s).ok());
}

}  // namespace
}  // namespace hanul
