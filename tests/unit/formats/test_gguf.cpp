#include "hanul/formats/gguf.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "formats_test_util.h"

namespace hanul {
namespace {

using testing_util::make_tensor;
using testing_util::read_bytes;
using testing_util::temp_path;
using testing_util::write_bytes;

TEST(Gguf, OpensStories260K) {
  auto f = GgufFile::open(HANUL_SOURCE_DIR "/tests/fixtures/stories260K-f32.gguf");
  ASSERT_TRUE(f.ok()) << f.message();
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->get_string("general.architecture"), "llama");
  EXPECT_EQ(f->get_string("tokenizer.ggml.model"), "llama");
  EXPECT_EQ(f->get_int("llama.embedding_length"), 64);
  EXPECT_EQ(f->get_int("llama.feed_forward_length"), 172);
  EXPECT_EQ(f->get_int("llama.block_count"), 5);
  EXPECT_EQ(f->get_int("llama.attention.head_count"), 8);
  EXPECT_EQ(f->get_int("llama.attention.head_count_kv"), 4);
  EXPECT_EQ(f->get_int("llama.context_length"), 2048);
  EXPECT_NEAR(*f->get_float("llama.attention.layer_norm_rms_epsilon"), 1e-5, 1e-9);
  EXPECT_FALSE(f->get_string("llama.block_count").has_value());  // wrong kind
  const auto* tokens = f->get_string_array("tokenizer.ggml.tokens");
  ASSERT_NE(tokens, nullptr);
  ASSERT_EQ(tokens->size(), 512u);
  EXPECT_EQ((*tokens)[0], "<unk>");
  EXPECT_EQ((*tokens)[1], "<s>");
  EXPECT_EQ((*tokens)[2], "</s>");
  auto scores = f->get_float_array("tokenizer.ggml.scores");
  ASSERT_TRUE(scores.has_value());
  EXPECT_EQ(scores->size(), 512u);
  auto types = f->get_int_array("tokenizer.ggml.token_type");
  ASSERT_TRUE(types.has_value());
  EXPECT_EQ(types->size(), 512u);

  EXPECT_EQ(f->tensors().size(), 3u + 5u * 9u);
  const Tensor* emb = f->find_tensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->dtype, DType::F32);
  EXPECT_EQ(emb->shape, (std::vector<int64_t>{512, 64}));  // ggml ne = [64, 512]
  const Tensor* gate = f->find_tensor("blk.4.ffn_gate.weight");
  ASSERT_NE(gate, nullptr);
  EXPECT_EQ(gate->shape, (std::vector<int64_t>{172, 64}));
  const Tensor* down = f->find_tensor("blk.0.ffn_down.weight");
  ASSERT_NE(down, nullptr);
  EXPECT_EQ(down->shape, (std::vector<int64_t>{64, 172}));
  EXPECT_EQ(f->find_tensor("output_norm.weight")->shape, (std::vector<int64_t>{64}));
  EXPECT_EQ(f->find_tensor("nope"), nullptr);
  // The model has tied embeddings: output.weight equals token_embd.weight (fixtures MANIFEST).
  const Tensor* out = f->find_tensor("output.weight");
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(std::memcmp(out->data, emb->data, emb->nbytes()), 0);
  // Views lie inside the file and stay alive after the GgufFile goes away.
  Tensor keep = *emb;
  const float first = *static_cast<const float*>(keep.data);
  { GgufFile moved = std::move(f).value(); }
  EXPECT_EQ(*static_cast<const float*>(keep.data), first);
}

TEST(Gguf, RoundTripsEveryMetadataType) {
  GgufWriter w;
  auto sv = [](GgufType t, decltype(GgufValue::value) v) {
    GgufValue g;
    g.type = t;
    g.value = std::move(v);
    return g;
  };
  auto av = [](GgufType e, decltype(GgufValue::value) v) {
    GgufValue g;
    g.type = GgufType::kArray;
    g.elem_type = e;
    g.value = std::move(v);
    return g;
  };
  w.set("t.u8", sv(GgufType::kU8, uint64_t{255}));
  w.set("t.i8", sv(GgufType::kI8, int64_t{-128}));
  w.set("t.u16", sv(GgufType::kU16, uint64_t{65535}));
  w.set("t.i16", sv(GgufType::kI16, int64_t{-32768}));
  w.set_u32("t.u32", 4000000000u);
  w.set_i32("t.i32", -2000000000);
  w.set_f32("t.f32", 0.25f);
  w.set_bool("t.bool", true);
  w.set_string("t.string", std::string("h\xc3\xa0nul \0 end", 13));
  w.set_u64("t.u64", 0xffffffffffffffffull);
  w.set("t.i64", sv(GgufType::kI64, int64_t{-(int64_t{1} << 62)}));
  w.set("t.f64", sv(GgufType::kF64, 3.141592653589793));
  w.set_string_array("a.string", {"a", "", "ccc"});
  w.set_f32_array("a.f32", {1.5, -2.0});
  w.set_i32_array("a.i32", {-1, 0, 7});
  w.set_u32_array("a.u32", {1, 2, 3});
  w.set("a.u8", av(GgufType::kU8, std::vector<uint64_t>{0, 255}));
  w.set("a.i16", av(GgufType::kI16, std::vector<int64_t>{-5}));
  w.set("a.bool", av(GgufType::kBool, std::vector<uint64_t>{1, 0, 1}));
  w.set("a.f64", av(GgufType::kF64, std::vector<double>{1e300}));
  w.set("a.i64", av(GgufType::kI64, std::vector<int64_t>{}));
  w.set("a.u64", av(GgufType::kU64, std::vector<uint64_t>{1ull << 63}));
  w.set_u32("t.u32", 4000000001u);  // replaces in place
  const std::string path = temp_path("roundtrip_meta.gguf");
  ASSERT_TRUE(w.write(path).ok());

  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.ok()) << f.message();
  EXPECT_EQ(f->metadata().size(), 22u);
  EXPECT_EQ(f->find("t.u8")->type, GgufType::kU8);
  EXPECT_EQ(f->get_int("t.u8"), 255);
  EXPECT_EQ(f->get_int("t.i8"), -128);
  EXPECT_EQ(f->get_int("t.u16"), 65535);
  EXPECT_EQ(f->get_int("t.i16"), -32768);
  EXPECT_EQ(f->get_int("t.u32"), 4000000001);
  EXPECT_EQ(f->get_int("t.i32"), -2000000000);
  EXPECT_EQ(f->get_float("t.f32"), 0.25);
  EXPECT_EQ(f->get_float("t.i32"), -2000000000.0);
  EXPECT_EQ(f->get_bool("t.bool"), true);
  EXPECT_EQ(f->get_string("t.string"), std::string("h\xc3\xa0nul \0 end", 13));
  EXPECT_EQ(std::get<uint64_t>(f->find("t.u64")->value), 0xffffffffffffffffull);
  EXPECT_FALSE(f->get_int("t.u64").has_value());  // does not fit int64
  EXPECT_EQ(f->get_int("t.i64"), -(int64_t{1} << 62));
  EXPECT_EQ(f->get_float("t.f64"), 3.141592653589793);
  EXPECT_EQ(*f->get_string_array("a.string"), (std::vector<std::string>{"a", "", "ccc"}));
  EXPECT_EQ(f->get_float_array("a.f32"), (std::vector<double>{1.5, -2.0}));
  EXPECT_EQ(f->get_int_array("a.i32"), (std::vector<int64_t>{-1, 0, 7}));
  EXPECT_EQ(f->get_int_array("a.u32"), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(f->get_int_array("a.u8"), (std::vector<int64_t>{0, 255}));
  EXPECT_EQ(f->get_int_array("a.i16"), (std::vector<int64_t>{-5}));
  EXPECT_EQ(f->find("a.bool")->elem_type, GgufType::kBool);
  EXPECT_EQ(std::get<std::vector<uint64_t>>(f->find("a.bool")->value),
            (std::vector<uint64_t>{1, 0, 1}));
  EXPECT_EQ(f->get_float_array("a.f64"), (std::vector<double>{1e300}));
  EXPECT_EQ(f->get_int_array("a.i64"), (std::vector<int64_t>{}));
  EXPECT_FALSE(f->get_int_array("a.u64").has_value());
  EXPECT_EQ(f->get_string_array("a.f32"), nullptr);
  std::remove(path.c_str());
}

TEST(Gguf, WriterRefusesValuesThatDoNotFit) {
  GgufWriter w;
  GgufValue v;
  v.type = GgufType::kU8;
  v.value = uint64_t{256};
  w.set("bad", v);
  auto s = w.write(temp_path("bad_value.gguf"));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("'bad'"), std::string::npos) << s.message();
  GgufWriter w2;
  v.type = GgufType::kString;  // holds a number
  w2.set("bad2", v);
  EXPECT_FALSE(w2.write(temp_path("bad_value.gguf")).ok());
  GgufWriter w3;
  w3.set_f32_array("too_big", {1.0, 1e300});
  EXPECT_FALSE(w3.write(temp_path("bad_value.gguf")).ok());
  GgufWriter w4;
  w4.set_i32_array("too_big", {int64_t{1} << 40});
  EXPECT_FALSE(w4.write(temp_path("bad_value.gguf")).ok());
  EXPECT_FALSE(std::filesystem::exists(temp_path("bad_value.gguf")));
}

TEST(Gguf, RoundTripsEveryTensorDtypeWithAlignment) {
  const DType kTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::F64,  DType::I8,
                          DType::I16,  DType::I32,  DType::I64,  DType::Q4_0, DType::Q4_1,
                          DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q8_1, DType::Q2_K,
                          DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q8_K};
  for (uint32_t alignment : {32u, 64u, 1u}) {
    GgufWriter w;
    w.set_string("general.architecture", "llama");
    std::vector<Tensor> ts;
    int i = 0;
    for (DType t : kTypes) {
      const int64_t bs = block_size(t);
      std::vector<int64_t> shape = i % 3 == 0   ? std::vector<int64_t>{bs * 2}
                                   : i % 3 == 1 ? std::vector<int64_t>{3, bs}
                                                : std::vector<int64_t>{2, 1, 3, bs * 2};
      ts.push_back(make_tensor("t" + std::to_string(i++) + "." + std::string(dtype_name(t)), t,
                               shape, 1234 + i));
      w.add_tensor(ts.back());
    }
    const std::string path = temp_path("roundtrip_tensors.gguf");
    auto s = w.write(path, alignment);
    ASSERT_TRUE(s.ok()) << s.message();
    auto f = GgufFile::open(path);
    ASSERT_TRUE(f.ok()) << f.message();
    if (alignment != 32) EXPECT_EQ(f->get_int("general.alignment"), alignment);
    ASSERT_EQ(f->tensors().size(), ts.size());
    for (size_t k = 0; k < ts.size(); ++k) {
      const Tensor& got = f->tensors()[k];
      EXPECT_EQ(got.name, ts[k].name);
      EXPECT_EQ(got.dtype, ts[k].dtype);
      EXPECT_EQ(got.shape, ts[k].shape);
      ASSERT_EQ(got.nbytes(), ts[k].nbytes());
      EXPECT_EQ(std::memcmp(got.data, ts[k].data, got.nbytes()), 0) << got.name;
      EXPECT_EQ((got.bytes() - f->tensors()[0].bytes()) % alignment, 0u);
    }
    std::remove(path.c_str());
  }
}

TEST(Gguf, RefusesVersionOneAndBadMagic) {
  std::string v1 = std::string("GGUF") + std::string("\x01\0\0\0", 4) + std::string(16, '\0');
  const std::string path = temp_path("v1.gguf");
  write_bytes(path, v1);
  auto f = GgufFile::open(path);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.message().find("v1"), std::string::npos) << f.message();
  EXPECT_NE(f.message().find(path), std::string::npos) << f.message();
  write_bytes(path, "GGML" + std::string(20, '\0'));
  f = GgufFile::open(path);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.message().find("magic"), std::string::npos) << f.message();
  write_bytes(path, "");
  EXPECT_FALSE(GgufFile::open(path).ok());
  std::remove(path.c_str());
}


// Builds GGUF bytes by hand, so tests can write what GgufWriter never would.
class RawGguf {
 public:
  RawGguf& u32(uint32_t v) { return raw(&v, 4); }
  RawGguf& u64(uint64_t v) { return raw(&v, 8); }
  RawGguf& str(const std::string& s) {
    u64(s.size());
    buf_ += s;
    return *this;
  }
  RawGguf& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    buf_ += "GGUF";
    return u32(version).u64(n_tensors).u64(n_kv);
  }
  // A tensor info: ne innermost first, as on disk.
  RawGguf& tensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type,
                  uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(ne.size()));
    for (uint64_t x : ne) u64(x);
    return u32(type).u64(offset);
  }
  RawGguf& pad(size_t alignment = 32) {
    buf_.append((alignment - buf_.size() % alignment) % alignment, '\0');
    return *this;
  }
  RawGguf& bytes(size_t n) {
    buf_.append(n, '\x11');
    return *this;
  }
  const std::string& str() const { return buf_; }

 private:
  RawGguf& raw(const void* p, size_t n) {
    buf_.append(static_cast<const char*>(p), n);
    return *this;
  }
  std::string buf_;
};

constexpr uint32_t kF32 = 0, kQ4_0 = 2;

TEST(Gguf, RefusesHostileFilesWithAClearMessage) {
  struct Case {
    std::string name;
    std::string bytes;
    std::string expect;
  };
  auto kv_str = [](uint64_t len) { return RawGguf().header(0, 1).str("k").u32(8).u64(len).str(); };
  std::vector<Case> cases = {
      {"version 4", RawGguf().header(0, 0, 4).str(), "version 4"},
      {"absurd kv count", RawGguf().header(0, uint64_t{1} << 60).str(), "metadata entries"},
      {"absurd tensor count", RawGguf().header(uint64_t{1} << 60, 0).str(), "tensors"},
      {"string past end", kv_str(1000), "length 1000"},
      {"huge string", kv_str(~uint64_t{0}), "bytes are left"},
      {"unknown kv type", RawGguf().header(0, 1).str("k").u32(13).u32(0).str(), "unknown type"},
      {"huge array", RawGguf().header(0, 1).str("k").u32(9).u32(4).u64(uint64_t{1} << 61).str(),
       "claims"},
      {"huge string array",
       RawGguf().header(0, 1).str("k").u32(9).u32(8).u64(uint64_t{1} << 40).str(), "claims"},
      {"nested array", RawGguf().header(0, 1).str("k").u32(9).u32(9).u64(1).str(), "nested"},
      {"duplicate key",
       RawGguf().header(0, 2).str("k").u32(4).u32(1).str("k").u32(4).u32(2).str(), "duplicate"},
      {"bad alignment",
       RawGguf().header(0, 1).str("general.alignment").u32(4).u32(48).str(), "alignment"},
      {"too many dims", RawGguf().header(1, 0).tensor("t", {1, 1, 1, 1, 1}, kF32, 0).str(),
       "5 dims"},
      {"unknown dtype", RawGguf().header(1, 0).tensor("t", {4}, 99, 0).pad().bytes(32).str(),
       "ggml type 99"},
      {"not a block multiple",
       RawGguf().header(1, 0).tensor("t", {33}, kQ4_0, 0).pad().bytes(64).str(), "block size 32"},
      {"zero dim", RawGguf().header(1, 0).tensor("t", {4, 0}, kF32, 0).pad().str(), "zero"},
      {"ne overflow",
       RawGguf().header(1, 0).tensor("t", {1ull << 32, 1ull << 32}, kF32, 0).pad().str(),
       "overflows"},
      {"bytes overflow",
       RawGguf().header(1, 0).tensor("t", {1ull << 31, 1ull << 31}, kF32, 0).pad().str(),
       "overflows"},
      {"data past end", RawGguf().header(1, 0).tensor("t.w", {16}, kF32, 0).pad().bytes(32).str(),
       "'t.w' (64 bytes at data offset 0) ends past the end"},
      {"offset past end",
       RawGguf().header(1, 0).tensor("t", {4}, kF32, ~uint64_t{0} - 31).pad().bytes(32).str(),
       "past the end"},
      {"unaligned offset",
       RawGguf().header(1, 0).tensor("t", {4}, kF32, 8).pad().bytes(64).str(), "alignment 32"},
      {"overlap",
       RawGguf().header(2, 0).tensor("a", {16}, kF32, 0).tensor("b", {8}, kF32, 32).pad().bytes(
           128).str(),
       "overlap"},
      {"duplicate tensor",
       RawGguf().header(2, 0).tensor("a", {8}, kF32, 0).tensor("a", {8}, kF32, 32).pad().bytes(
           64).str(),
       "duplicate tensor"},
      {"header truncated in tensor info",
       RawGguf().header(1, 0).str("tttttttttttt").u32(1).str(), "ne[0]"},
  };
  const std::string path = temp_path("hostile.gguf");
  for (const Case& c : cases) {
    write_bytes(path, c.bytes);
    auto f = GgufFile::open(path);
    ASSERT_FALSE(f.ok()) << c.name;
    EXPECT_NE(f.message().find(c.expect), std::string::npos) << c.name << ": " << f.message();
    EXPECT_NE(f.message().find(path), std::string::npos) << c.name << ": " << f.message();
  }
  // Sanity: the builder makes files that do open when nothing is wrong.
  write_bytes(path, RawGguf()
                        .header(2, 1)
                        .str("general.alignment").u32(4).u32(64)
                        .tensor("a", {16}, kF32, 0)
                        .tensor("b", {32}, kQ4_0, 64)
                        .pad(64)
                        .bytes(64 + 18)
                        .str());
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.ok()) << f.message();
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->find_tensor("b")->dtype, DType::Q4_0);
  EXPECT_EQ(f->find_tensor("b")->bytes() - f->find_tensor("a")->bytes(), 64);
  // v2 has the same layout as v3.
  write_bytes(path, RawGguf().header(0, 1, 2).str("k").u32(8).str("v").str());
  f = GgufFile::open(path);
  ASSERT_TRUE(f.ok()) << f.message();
  EXPECT_EQ(f->version(), 2u);
  EXPECT_EQ(f->get_string("k"), "v");
  std::remove(path.c_str());
}

// Touches every byte of every tensor, so AddressSanitizer sees a view that leaves the file.
uint64_t checksum(const std::vector<Tensor>& tensors) {
  uint64_t sum = 0;
  for (const Tensor& t : tensors)
    for (int64_t i = 0; i < t.nbytes(); ++i) sum += t.bytes()[i];
  return sum;
}

// Randomly truncated and bit-flipped variants of a valid file: each must open or fail cleanly.
// Run under ASan + UBSan too (test_formats_asan in tests/formats.cmake).
TEST(Gguf, FuzzedFilesOpenOrFailCleanly) {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_u32("llama.block_count", 2);
  w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.set_bool("flag", true);
  w.set_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a", "b"});
  w.set_f32_array("tokenizer.ggml.scores", {0, 0, 0, -1, -2});
  w.set_i32_array("tokenizer.ggml.token_type", {2, 3, 3, 1, 1});
  std::vector<Tensor> ts = {make_tensor("token_embd.weight", DType::F32, {5, 8}, 1),
                            make_tensor("blk.0.attn_q.weight", DType::Q4_0, {4, 64}, 2),
                            make_tensor("blk.0.ffn_down.weight", DType::Q6_K, {2, 256}, 3),
                            make_tensor("output_norm.weight", DType::F16, {8}, 4)};
  for (const Tensor& t : ts) w.add_tensor(t);
  const std::string good_path = temp_path("fuzz_good.gguf");
  ASSERT_TRUE(w.write(good_path).ok());
  const std::string good = read_bytes(good_path);
  ASSERT_TRUE(GgufFile::open(good_path).ok());

  std::mt19937 rng(20240611);
  const std::string path = temp_path("fuzz.gguf");
  int opened = 0, refused = 0;
  for (int iter = 0; iter < 400; ++iter) {
    std::string bytes = good;
    const int kind = iter % 4;
    if (kind == 0) {  // truncate anywhere
      bytes.resize(rng() % bytes.size());
    } else if (kind == 1) {  // flip a few bits, mostly in the header where they matter
      const size_t span = rng() % 4 == 0 ? bytes.size() : std::min<size_t>(bytes.size(), 600);
      for (int k = 1 + rng() % 4; k > 0; --k) bytes[rng() % span] ^= static_cast<char>(1 << (rng() % 8));
    } else if (kind == 2) {  // a random byte run (lengths and counts become huge or odd)
      const size_t at = rng() % std::min<size_t>(bytes.size(), 600);
      for (size_t k = at; k < std::min(bytes.size(), at + 1 + rng() % 8); ++k)
        bytes[k] = static_cast<char>(rng());
    } else {  // flips and a truncation together
      bytes[rng() % std::min<size_t>(bytes.size(), 600)] ^= static_cast<char>(1 << (rng() % 8));
      bytes.resize(bytes.size() - rng() % 64);
    }
    write_bytes(path, bytes);
    auto f = GgufFile::open(path);
    if (f.ok()) {
      ++opened;
      checksum(f->tensors());
      for (const auto& [k, v] : f->metadata()) (void)f->get_float_array(k);
    } else {
      ++refused;
      EXPECT_NE(f.message().find(path), std::string::npos) << f.message();
    }
  }
  // Both outcomes must really happen, or the variants test nothing.
  EXPECT_GT(refused, 100);
  EXPECT_GT(opened, 10);
  std::remove(path.c_str());
  std::remove(good_path.c_str());
}

}  // namespace
}  // namespace hanul
