#include "hanul/train/trainer.h"

#include <gtest/gtest.h>

#include <memory>

#include "temp_dir.h"
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "hanul/kernels/cpu/ops.h"
#include "hanul/tokenizer/tokenizer.h"
#include "hanul/train/data.h"
#include "hanul/train/metrics.h"

namespace hanul {
namespace {

namespace fs = std::filesystem;

const std::string kTok = std::string(HANUL_SOURCE_DIR) + "/tests/fixtures/stories260K-f32.gguf";
const std::string kText = std::string(HANUL_SOURCE_DIR) + "/tests/fixtures/corpus/en_tinystories_val.txt";

std::string bytes_of(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = std::make_unique<TempDir>("hanul_test_trainer");
    dir_ = tmp_->path;
    auto tok = Tokenizer::load(kTok);
    ASSERT_TRUE(tok.ok()) << tok.message();
    DataPrepareOptions o;
    o.tokenizer_path = kTok;
    o.out_dir = (dir_ / "data").string();
    o.val_fraction = 0.05;
    auto st = prepare_data(*tok, {kText}, o);
    ASSERT_TRUE(st.ok()) << st.message();
  }

  TrainConfig tiny(const std::string& run) const {
    TrainConfig c;
    c.data = (dir_ / "data").string();
    c.out = (dir_ / run).string();
    c.dim = 32;
    c.n_layers = 2;
    c.n_heads = 4;
    c.n_kv_heads = 2;
    c.ffn_dim = 48;
    c.seq_len = 24;
    c.batch_size = 4;
    c.steps = 6;
    c.warmup_steps = 2;
    c.lr = 5e-3;
    c.min_lr = 5e-4;
    c.checkpoint_every = 2;
    c.eval_every = 3;
    c.eval_batches = 2;
    c.threads = 2;
    return c;
  }

  std::unique_ptr<TempDir> tmp_;
  fs::path dir_;
};

TEST_F(TrainerTest, RunsLogsAndCheckpoints) {
  std::vector<TrainProgress> seen;
  TrainRunOptions opt;
  opt.on_step = [&](const TrainProgress& p) { seen.push_back(p); };
  auto r = run_training(tiny("run"), opt);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->step, 6);
  EXPECT_FALSE(r->stopped);
  ASSERT_TRUE(r->val_loss.has_value());
  ASSERT_EQ(seen.size(), 6u);
  EXPECT_TRUE(seen[2].val_loss.has_value() && seen[5].val_loss.has_value());
  EXPECT_FALSE(seen[0].val_loss.has_value());
  EXPECT_TRUE(seen[1].checkpointed && !seen[2].checkpointed && seen[5].checkpointed);
  EXPECT_LT(seen[5].train_loss, seen[0].train_loss);
  auto recs = read_metrics((dir_ / "run" / "metrics.jsonl").string());
  ASSERT_TRUE(recs.ok()) << recs.message();
  ASSERT_EQ(recs->size(), 6u);
  EXPECT_EQ((*recs)[5].tokens, 6 * 4 * 24);
  EXPECT_TRUE(fs::exists(dir_ / "run" / "loss.svg"));
  EXPECT_TRUE(fs::exists(dir_ / "run" / "checkpoint" / "tokenizer.json"));
  // The same folder again without resume is refused; resuming a finished run does nothing.
  EXPECT_FALSE(run_training(tiny("run"), {}).ok());
  TrainRunOptions again;
  again.resume = true;
  auto done = run_training(tiny("run"), again);
  ASSERT_TRUE(done.ok()) << done.message();
  EXPECT_EQ(done->step, 6);
}

TEST_F(TrainerTest, StopAndResumeGiveTheSameBits) {
  ASSERT_TRUE(run_training(tiny("straight"), {}).ok());
  std::atomic<bool> stop{true};  // stop after the first step...
  TrainRunOptions first;
  first.stop = &stop;
  auto r = run_training(tiny("stopped"), first);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_TRUE(r->stopped);
  EXPECT_EQ(r->step, 1);
  TrainRunOptions resume;  // ...then finish with another thread count
  resume.resume = true;
  resume.resume_threads = 1;
  auto r2 = run_training(tiny("stopped"), resume);
  ASSERT_TRUE(r2.ok()) << r2.message();
  EXPECT_EQ(r2->step, 6);
  for (const char* f : {"model.safetensors", "optimizer.safetensors"})
    EXPECT_EQ(bytes_of(dir_ / "stopped" / "checkpoint" / f), bytes_of(dir_ / "straight" / "checkpoint" / f)) << f;
}

TEST_F(TrainerTest, AccumulationMatchesOneBigBatch) {
  // 4 rows in one micro-batch or in 2 of 2 rows: the same mean loss and nearly the same step
  // (only the order of the float sums differs).
  TrainConfig a = tiny("one"), b = tiny("two");
  a.steps = b.steps = 2;
  b.grad_accum = 2;
  std::vector<double> la, lb;
  TrainRunOptions oa, ob;
  oa.on_step = [&](const TrainProgress& p) { la.push_back(p.train_loss); };
  ob.on_step = [&](const TrainProgress& p) { lb.push_back(p.train_loss); };
  ASSERT_TRUE(run_training(a, oa).ok());
  ASSERT_TRUE(run_training(b, ob).ok());
  ASSERT_EQ(la.size(), 2u);
  ASSERT_EQ(lb.size(), 2u);
  EXPECT_NEAR(la[0], lb[0], 1e-5);
  EXPECT_NEAR(la[1], lb[1], 1e-4);
}

TEST_F(TrainerTest, RefusesWhatCannotWork) {
  TrainRunOptions resume;
  resume.resume = true;
  auto r = run_training(tiny("nothing"), resume);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("manifest.json"), std::string::npos) << r.message();
  TrainConfig long_seq = tiny("long");
  long_seq.seq_len = 1 << 20;
  r = run_training(long_seq, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("too few"), std::string::npos) << r.message();
  TrainConfig odd = tiny("odd");
  odd.batch_size = 3;
  odd.grad_accum = 2;
  EXPECT_FALSE(run_training(odd, {}).ok());
}

// bf16 matmuls where the CPU has no AVX512_BF16 (capped to AVX2 here): refused with a
// message before the run folder is made, and the process's precision left as it was.
TEST_F(TrainerTest, Bf16WithoutAvx512Bf16IsRefusedBeforeAnythingIsWritten) {
  cpu::set_max_isa(cpu::Isa::kAvx2);
  TrainConfig c = tiny("bf16");
  c.matmul_precision = "bf16";
  auto r = run_training(c, {});
  cpu::set_max_isa(cpu::Isa::kAvx512);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("needs a CPU with AVX512_BF16"), std::string::npos) << r.message();
  EXPECT_FALSE(fs::exists(c.out));
  EXPECT_EQ(cpu::MatmulPrecision::kFp32, cpu::matmul_precision());
}

// Where it can run, a bf16 run sets the precision for itself only.
TEST_F(TrainerTest, Bf16RunRestoresThePrecision) {
  if (!cpu::bf16_matmul_supported()) GTEST_SKIP() << "no AVX512_BF16 on this machine";
  TrainConfig c = tiny("bf16");
  c.matmul_precision = "bf16";
  ASSERT_TRUE(run_training(c, {}).ok());
  EXPECT_EQ(cpu::MatmulPrecision::kFp32, cpu::matmul_precision());
}

}  // namespace
}  // namespace hanul
