#include "hanul/formats/safetensors.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>

#include "formats_test_util.h"

namespace hanul {
namespace {

namespace fs = std::filesystem;
using testing_util::make_tensor;
using testing_util::read_bytes;
using testing_util::temp_path;
using testing_util::write_bytes;

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  std::memcpy(s.data(), &n, 8);
  return s;
}

// A file from a header text (padded to 8 bytes) and data bytes.
std::string st_file(std::string header, const std::string& data) {
  header.append((8 - header.size() % 8) % 8, ' ');
  return le64(header.size()) + header + data;
}

TEST(Safetensors, WritesTheBytesTheReferenceWrites) {
  // The expected bytes are those of test_serialization in huggingface/safetensors
  // (safetensors/src/tensor.rs): one F32 tensor "attn.0" of shape [1, 2, 3] = 0..5.
  Tensor t = Tensor::allocate("attn.0", DType::F32, {1, 2, 3});
  for (int i = 0; i < 6; ++i) static_cast<float*>(t.mutable_data())[i] = static_cast<float>(i);
  const std::string path = temp_path("reference.safetensors");
  ASSERT_TRUE(write_safetensors(path, {t}).ok());
  const std::string header =
      R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})";
  ASSERT_EQ(header.size(), 64u);  // already a multiple of 8: no padding
  std::string expected = le64(64) + header;
  expected.append(reinterpret_cast<const char*>(t.data), 24);
  EXPECT_EQ(read_bytes(path), expected);

  // test_empty: no tensors, metadata {"framework": "pt"}.
  ASSERT_TRUE(write_safetensors(path, {}, {{"framework", "pt"}}).ok());
  EXPECT_EQ(read_bytes(path), le64(40) + R"({"__metadata__":{"framework":"pt"}})" + "     ");
  std::remove(path.c_str());
}

TEST(Safetensors, RoundTripsEveryDtypeSortedLikeTheReference) {
  const DType kTypes[] = {DType::F32, DType::F16, DType::BF16, DType::F64,
                          DType::I8,  DType::I16, DType::I32,  DType::I64};
  std::vector<Tensor> ts;
  uint32_t seed = 1;
  for (DType t : kTypes) {
    ts.push_back(make_tensor("z." + std::string(dtype_name(t)), t, {3, 5}, seed++));
    ts.push_back(make_tensor("a." + std::string(dtype_name(t)), t, {7}, seed++));
  }
  ts.push_back(make_tensor("scalar", DType::F32, {}, seed++));
  ts.push_back(make_tensor("empty", DType::F16, {0}, seed++));
  const std::string path = temp_path("roundtrip.safetensors");
  ASSERT_TRUE(write_safetensors(path, ts, {{"format", "pt"}, {"note", "h\xc3\xa0nul"}}).ok());
  auto f = SafetensorsFile::open(path);
  ASSERT_TRUE(f.ok()) << f.message();
  EXPECT_EQ(f->metadata().at("format"), "pt");
  EXPECT_EQ(f->metadata().at("note"), "h\xc3\xa0nul");
  ASSERT_EQ(f->tensors().size(), ts.size());
  for (const Tensor& want : ts) {
    auto it = std::find_if(f->tensors().begin(), f->tensors().end(),
                           [&](const Tensor& g) { return g.name == want.name; });
    ASSERT_NE(it, f->tensors().end()) << want.name;
    EXPECT_EQ(it->dtype, want.dtype);
    EXPECT_EQ(it->shape, want.shape);
    ASSERT_EQ(it->nbytes(), want.nbytes());
    EXPECT_EQ(std::memcmp(it->data, want.data, want.nbytes()), 0) << want.name;
    // The reference's sort keeps each tensor aligned to its element size.
    EXPECT_EQ(reinterpret_cast<uintptr_t>(it->data) % dtype_info(want.dtype)->type_size, 0u);
  }
  // File order: I64 first (highest rank), names ascending within a dtype.
  EXPECT_EQ(f->tensors()[0].name, "a.I64");
  EXPECT_EQ(f->tensors()[1].name, "z.I64");
  EXPECT_EQ(f->tensors()[2].name, "a.F64");
  EXPECT_EQ(f->tensors().back().name, "z.I8");
  std::remove(path.c_str());
}

TEST(Safetensors, WriterRefusesQuantizedAndDuplicates) {
  const std::string path = temp_path("refused.safetensors");
  auto s = write_safetensors(path, {make_tensor("q", DType::Q4_0, {32}, 1)});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("Q4_0"), std::string::npos) << s.message();
  Tensor a = make_tensor("a", DType::F32, {2}, 1);
  EXPECT_FALSE(write_safetensors(path, {a, a}).ok());
  EXPECT_FALSE(fs::exists(path));
}

TEST(Safetensors, RefusesBadHeaders) {
  const std::string path = temp_path("bad.safetensors");
  const std::string data(16, '\x01');
  struct Case {
    std::string bytes;
    std::string expect;  // part of the message
  };
  const std::string ok_entry = R"("data_offsets":[0,16]})";
  std::vector<Case> cases = {
      {"", "too short"},
      {le64(1000) + "{}", "past the end"},
      {le64(uint64_t{1} << 40) + "{}", "100 MB"},
      {st_file("{not json", data), "JSON"},
      {st_file("[1,2]", data), "object"},
      {st_file(R"({"a":{"dtype":"U4","shape":[4],)" + ok_entry + "}", data), "dtype U4"},
      {st_file(R"({"a":{"dtype":"BOOL","shape":[16],)" + ok_entry + "}", data), "BOOL"},
      {st_file(R"({"a":{"dtype":"F32","shape":[5],)" + ok_entry + "}", data), "needs 20 bytes"},
      {st_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,32]}})", data), "outside"},
      {st_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[8,4]}})", data), "outside"},
      {st_file(R"({"a":{"dtype":"F32","shape":[-4],)" + ok_entry + "}", data), "shape"},
      {st_file(R"({"a":{"dtype":"F32","shape":[4.5],)" + ok_entry + "}", data), "shape"},
      {st_file(R"({"a":{"dtype":"F32","shape":[4]}})", data), "data_offsets"},
      {st_file(R"({"a":{"dtype":"I8","shape":[4294967296,4294967296,4294967296],)" + ok_entry +
                   "}",
               data),
       "overflow"},
      {st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
               R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
               data),
       "overlap"},
      {st_file(R"({"__metadata__":{"x":1}})", data), "__metadata__"},
  };
  for (const Case& c : cases) {
    write_bytes(path, c.bytes);
    auto f = SafetensorsFile::open(path);
    ASSERT_FALSE(f.ok()) << c.expect;
    EXPECT_NE(f.message().find(c.expect), std::string::npos) << f.message();
    EXPECT_NE(f.message().find(path), std::string::npos) << f.message();
  }
  // Gaps between tensors are accepted (the reference is stricter; nothing is at risk).
  write_bytes(path, st_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                            R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                            data));
  auto f = SafetensorsFile::open(path);
  ASSERT_TRUE(f.ok()) << f.message();
  EXPECT_EQ(f->tensors().size(), 2u);
  std::remove(path.c_str());
}

TEST(SafetensorsDir, SingleFileAndShardedFoldersRoundTrip) {
  std::vector<Tensor> ts;
  for (int i = 0; i < 6; ++i)
    ts.push_back(make_tensor("model.layers." + std::to_string(i) + ".w", DType::BF16, {4, 8}, i));
  const std::string one = temp_path("one_dir"), many = temp_path("sharded_dir");
  ASSERT_TRUE(write_safetensors_dir(one, ts).ok());
  ASSERT_TRUE(write_safetensors_dir(many, ts, /*max_shard_bytes=*/150).ok());
  write_bytes(many + "/config.json", R"({"model_type": "llama"})");
  EXPECT_TRUE(fs::exists(one + "/model.safetensors"));
  EXPECT_FALSE(fs::exists(one + "/model.safetensors.index.json"));
  // 64 bytes each, at most 150 per shard: 2 per shard, 3 shards.
  EXPECT_TRUE(fs::exists(many + "/model-00003-of-00003.safetensors"));
  EXPECT_TRUE(fs::exists(many + "/model.safetensors.index.json"));
  for (const std::string& dir : {one, many}) {
    auto d = SafetensorsDir::open(dir);
    ASSERT_TRUE(d.ok()) << d.message();
    EXPECT_EQ(d->tensors().size(), ts.size());
    for (const Tensor& want : ts) {
      const Tensor* got = d->find_tensor(want.name);
      ASSERT_NE(got, nullptr) << want.name;
      EXPECT_EQ(got->shape, want.shape);
      EXPECT_EQ(std::memcmp(got->data, want.data, want.nbytes()), 0);
    }
    EXPECT_EQ(d->find_tensor("missing"), nullptr);
  }
  EXPECT_EQ(SafetensorsDir::open(many)->config_json(), R"({"model_type": "llama"})");
  EXPECT_EQ(SafetensorsDir::open(one)->config_json(), "");

  // An index that points outside the folder, or at a shard without the tensor, is refused.
  const std::string idx = many + "/model.safetensors.index.json";
  const std::string good = read_bytes(idx);
  write_bytes(idx, R"({"weight_map": {"x": "../../etc/passwd"}})");
  auto d = SafetensorsDir::open(many);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.message().find("plain file name"), std::string::npos) << d.message();
  write_bytes(idx, R"({"weight_map": {"model.layers.0.w": "model-00002-of-00003.safetensors"}})");
  d = SafetensorsDir::open(many);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.message().find("does not hold it"), std::string::npos) << d.message();
  write_bytes(idx, "{]");
  EXPECT_FALSE(SafetensorsDir::open(many).ok());
  write_bytes(idx, good);
  EXPECT_TRUE(SafetensorsDir::open(many).ok());
  EXPECT_FALSE(SafetensorsDir::open(temp_path("no_such_dir")).ok());
  fs::remove_all(one);
  fs::remove_all(many);
}


// Randomly truncated and corrupted variants of a valid file: each must open or fail cleanly.
// Run under ASan + UBSan too (test_formats_asan in tests/formats.cmake).
TEST(Safetensors, FuzzedFilesOpenOrFailCleanly) {
  std::vector<Tensor> ts = {make_tensor("model.embed_tokens.weight", DType::BF16, {6, 4}, 1),
                            make_tensor("model.norm.weight", DType::F32, {4}, 2),
                            make_tensor("lm_head.weight", DType::F16, {6, 4}, 3),
                            make_tensor("step", DType::I64, {}, 4)};
  const std::string good_path = temp_path("fuzz_good.safetensors");
  ASSERT_TRUE(write_safetensors(good_path, ts, {{"format", "pt"}}).ok());
  const std::string good = read_bytes(good_path);
  std::mt19937 rng(777);
  const std::string path = temp_path("fuzz.safetensors");
  const std::string kDigits = "0123456789";
  int opened = 0, refused = 0;
  for (int iter = 0; iter < 400; ++iter) {
    std::string bytes = good;
    const int kind = iter % 4;
    if (kind == 0) {
      bytes.resize(rng() % bytes.size());
    } else if (kind == 1) {
      for (int k = 1 + rng() % 4; k > 0; --k)
        bytes[rng() % bytes.size()] ^= static_cast<char>(1 << (rng() % 8));
    } else if (kind == 2) {  // change a digit of the header: shapes and offsets go wrong
      std::vector<size_t> at;
      for (size_t i = 8; i < std::min<size_t>(bytes.size(), 300); ++i)
        if (kDigits.find(bytes[i]) != std::string::npos) at.push_back(i);
      for (int k = 1 + rng() % 2; k > 0 && !at.empty(); --k)
        bytes[at[rng() % at.size()]] = kDigits[rng() % 10];
    } else {  // the header length itself
      bytes[rng() % 8] ^= static_cast<char>(1 << (rng() % 8));
    }
    write_bytes(path, bytes);
    auto f = SafetensorsFile::open(path);
    if (f.ok()) {
      ++opened;
      uint64_t sum = 0;
      for (const Tensor& t : f->tensors())
        for (int64_t i = 0; i < t.nbytes(); ++i) sum += t.bytes()[i];
      (void)sum;
    } else {
      ++refused;
      EXPECT_NE(f.message().find(path), std::string::npos) << f.message();
    }
  }
  EXPECT_GT(refused, 100);
  EXPECT_GT(opened, 10);
  std::remove(path.c_str());
  std::remove(good_path.c_str());
}

}  // namespace
}  // namespace hanul
