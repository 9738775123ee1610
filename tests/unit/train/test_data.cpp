#include "hanul/train/data.h"

#include <gtest/gtest.h>

#include <memory>

#include "temp_dir.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "hanul/tokenizer/tokenizer.h"

namespace hanul {
namespace {

namespace fs = std::filesystem;

const std::string kTok = std::string(HANUL_SOURCE_DIR) + "/tests/fixtures/stories260K-f32.gguf";

class DataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = std::make_unique<TempDir>("hanul_test_data");
    dir_ = tmp_->path;
    auto t = Tokenizer::load(kTok);
    ASSERT_TRUE(t.ok()) << t.message();
    tok_ = std::make_unique<Tokenizer>(std::move(t.value()));
  }

  std::string write(const std::string& name, const std::string& text) {
    std::string p = (dir_ / name).string();
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }
  DataPrepareOptions opts(double val = 0, uint64_t shard = 1000) {
    DataPrepareOptions o;
    o.tokenizer_path = kTok;
    o.out_dir = (dir_ / "out").string();
    o.val_fraction = val;
    o.shard_tokens = shard;
    return o;
  }
  std::vector<int32_t> expect(const std::vector<std::string>& docs) {
    std::vector<int32_t> ids;
    for (const auto& d : docs) {
      auto e = tok_->encode(d, false, false);
      ids.insert(ids.end(), e.begin(), e.end());
      ids.push_back(tok_->eos());
    }
    return ids;
  }
  std::vector<int32_t> read_all(bool val = false) {
    DataShards::Options o;
    o.validation = val;
    auto d = DataShards::open((dir_ / "out").string(), o);
    EXPECT_TRUE(d.ok()) << d.message();
    if (!d.ok()) return {};
    std::vector<int32_t> ids(d->total_tokens());
    EXPECT_TRUE(d->read(0, ids.size(), ids.data()).ok());
    return ids;
  }

  std::unique_ptr<TempDir> tmp_;
  fs::path dir_;
  std::unique_ptr<Tokenizer> tok_;
};

TEST_F(DataTest, TextParagraphsKoreanAndEnglishRoundTrip) {
  const std::string f = write("a.txt",
                              "Once upon a time\nthere was a cat.\n\n\n안녕하세요, 세계!\r\n한국어 문장입니다.\n"
                              "   \nThe end.");
  auto st = prepare_data(*tok_, {f}, opts());
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(st->documents, 3u);
  const auto want = expect({"Once upon a time\nthere was a cat.", "안녕하세요, 세계!\n한국어 문장입니다.", "The end."});
  EXPECT_EQ(read_all(), want);
  EXPECT_EQ(st->train_tokens, want.size());
  auto idx = nlohmann::json::parse(std::ifstream((dir_ / "out" / "index.json").string()));
  EXPECT_EQ(idx["eos"].get<int32_t>(), tok_->eos());
  EXPECT_EQ(idx["n_vocab"].get<int32_t>(), tok_->n_vocab());
  EXPECT_EQ(idx["train"]["tokens"].get<uint64_t>(), want.size());
  EXPECT_EQ(idx["tokenizer"]["hash"].get<std::string>(), *hash_tokenizer_files(kTok));
  EXPECT_EQ(idx["tokenizer"]["hash"].get<std::string>().rfind("fnv1a64:", 0), 0u);
}

TEST_F(DataTest, JsonlBadLinesAreCountedNotFatal) {
  const std::string f = write("b.jsonl",
                              "{\"text\": \"hello world\"}\n"
                              "{\"text\": 42}\n"
                              "not json at all\n"
                              "\n"
                              "{\"id\": 3, \"text\": \"줄 바꿈\\n있는 글\"}\n"
                              "[1,2]\n");
  auto st = prepare_data(*tok_, {f}, opts());
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(st->malformed_lines, 3u);
  EXPECT_EQ(st->documents, 2u);
  EXPECT_EQ(read_all(), expect({"hello world", "줄 바꿈\n있는 글"}));
}

TEST_F(DataTest, ShardBoundariesSplitTheStreamExactly) {
  std::string text;
  std::vector<std::string> docs;
  for (int i = 0; i < 40; ++i) {
    docs.push_back("Document number " + std::to_string(i) + " says 한글 " + std::string(i % 7, 'x'));
    text += docs.back() + "\n\n";
  }
  const std::string f = write("c.txt", text);
  auto st = prepare_data(*tok_, {f, f}, opts(0, 37));
  ASSERT_TRUE(st.ok()) << st.message();
  std::vector<std::string> twice = docs;
  twice.insert(twice.end(), docs.begin(), docs.end());
  const auto want = expect(twice);
  ASSERT_GT(want.size(), 37u * 3);
  EXPECT_EQ(st->shard_files.size(), (want.size() + 36) / 37);
  EXPECT_EQ(st->shard_files[0], "shard_00000.bin");
  for (size_t i = 0; i + 1 < st->shard_files.size(); ++i)
    EXPECT_EQ(fs::file_size(dir_ / "out" / st->shard_files[i]), 37u * 4);
  EXPECT_EQ(read_all(), want);

  // Windows of T + 1 with stride T, B per step, counted across epochs.
  auto d = DataShards::open((dir_ / "out").string());
  ASSERT_TRUE(d.ok()) << d.message();
  const int B = 3, T = 16;
  const uint64_t nw = d->windows_per_epoch(T);
  EXPECT_EQ(nw, (want.size() - 1) / T);
  std::vector<int32_t> batch(B * (T + 1));
  for (uint64_t step : {0ull, 1ull, 5ull, 1000ull}) {
    ASSERT_TRUE(d->batch(step, B, T, batch.data()).ok());
    for (int b = 0; b < B; ++b) {
      const uint64_t k = (step * B + b) % nw;
      for (int t = 0; t <= T; ++t) ASSERT_EQ(batch[b * (T + 1) + t], want[k * T + t]);
    }
  }
  // Shuffled: deterministic for a seed, each epoch a permutation of the windows.
  DataShards::Options so;
  so.shuffle = true;
  so.seed = 7;
  auto s1 = DataShards::open((dir_ / "out").string(), so), s2 = DataShards::open((dir_ / "out").string(), so);
  ASSERT_TRUE(s1.ok() && s2.ok());
  std::vector<int> seen(nw, 0);
  std::vector<int32_t> w1(T + 1), w2(T + 1);
  for (uint64_t g = 0; g < nw; ++g) {
    ASSERT_TRUE(s1->batch(g, 1, T, w1.data()).ok());
    ASSERT_TRUE(s2->batch(g, 1, T, w2.data()).ok());
    ASSERT_EQ(w1, w2);
    const uint64_t k = s1->window(g, T);
    ASSERT_LT(k, nw);
    ++seen[k];
    ASSERT_TRUE(std::equal(w1.begin(), w1.end(), want.begin() + k * T)) << "global window " << g;
  }
  for (uint64_t k = 0; k < nw; ++k) EXPECT_EQ(seen[k], 1) << "window " << k;
  // Not the identity, and the next epoch has its own order.
  int moved = 0, reordered = 0;
  for (uint64_t g = 0; g < nw; ++g) {
    moved += s1->window(g, T) != g;
    reordered += s1->window(g, T) != s1->window(g + nw, T);
  }
  EXPECT_GT(moved, 0);
  EXPECT_GT(reordered, 0);
  EXPECT_FALSE(d->read(want.size() - 2, 3, batch.data()).ok());
}

TEST_F(DataTest, ValidationSplitIsDeterministic) {
  std::string text;
  std::vector<std::string> docs;
  for (int i = 0; i < 200; ++i) {
    docs.push_back("story " + std::to_string(i * 7919));
    text += docs.back() + "\n\n";
  }
  const std::string f = write("d.txt", text);
  auto st = prepare_data(*tok_, {f}, opts(0.1));
  ASSERT_TRUE(st.ok()) << st.message();
  std::vector<std::string> tr, va;
  for (const auto& d : docs) (is_validation_document(d, 0, 0.1) ? va : tr).push_back(d);
  EXPECT_GT(va.size(), 5u);
  EXPECT_LT(va.size(), 45u);
  EXPECT_EQ(st->val_documents, va.size());
  EXPECT_EQ(read_all(false), expect(tr));
  EXPECT_EQ(read_all(true), expect(va));
  EXPECT_EQ(st->val_shard_files.at(0), "val_00000.bin");
  // A second run gives the same bytes; another seed gives another split.
  const auto first = read_all(true);
  ASSERT_TRUE(prepare_data(*tok_, {f}, opts(0.1)).ok());
  EXPECT_EQ(read_all(true), first);
  int differ = 0;
  for (const auto& d : docs) differ += is_validation_document(d, 0, 0.1) != is_validation_document(d, 1, 0.1);
  EXPECT_GT(differ, 0);
}

TEST_F(DataTest, UnreadableInputIsAClearError) {
  const std::string missing = (dir_ / "nope.txt").string();
  auto st = prepare_data(*tok_, {write("ok.txt", "fine"), missing}, opts());
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("nope.txt"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("cannot read"), std::string::npos) << st.message();
  EXPECT_FALSE(fs::exists(dir_ / "out" / "index.json"));
  auto st2 = prepare_data(*tok_, {dir_.string()}, opts());
  ASSERT_FALSE(st2.ok());
  EXPECT_NE(st2.message().find("directory"), std::string::npos) << st2.message();
}

TEST_F(DataTest, TruncatedShardIsRejectedOnOpen) {
  ASSERT_TRUE(prepare_data(*tok_, {write("e.txt", "some words here\n\nmore words")}, opts()).ok());
  fs::resize_file(dir_ / "out" / "shard_00000.bin", 6);
  auto d = DataShards::open((dir_ / "out").string());
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.message().find("shard_00000.bin"), std::string::npos) << d.message();
}

}  // namespace
}  // namespace hanul
