// Drives hanul's GGUF and safetensors reader and writer for tests/reference/check_formats_interop.py.
//   formats_tool dump PATH          JSON description of a .gguf, a .safetensors or a HF folder
//   formats_tool write-sample OUT   a deterministic sample (.gguf or .safetensors by extension)
// Tensor bytes are summarized by FNV-1a 64 (the Python side computes the same).
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "hanul/formats/gguf.h"
#include "hanul/formats/safetensors.h"

using hanul::DType;
using hanul::GgufType;
using hanul::GgufValue;
using hanul::Tensor;
using nlohmann::ordered_json;

namespace {

uint64_t fnv1a(const Tensor& t) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (int64_t i = 0; i < t.nbytes(); ++i) h = (h ^ t.bytes()[i]) * 0x100000001b3ull;
  return h;
}

ordered_json tensor_json(const Tensor& t) {
  return {{"name", t.name}, {"dtype", std::string(hanul::dtype_name(t.dtype))},
          {"shape", t.shape}, {"nbytes", t.nbytes()}, {"fnv1a", std::to_string(fnv1a(t))}};
}

const char* kTypeNames[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                            "bool", "string", "array", "u64", "i64", "f64"};

ordered_json value_json(const GgufValue& v) {
  ordered_json j;
  j["type"] = kTypeNames[static_cast<int>(v.type)];
  if (v.type == GgufType::kArray) j["elem_type"] = kTypeNames[static_cast<int>(v.elem_type)];
  std::visit([&](const auto& x) { j["value"] = x; }, v.value);
  return j;
}

int dump(const std::string& path) {
  ordered_json out;
  if (std::filesystem::is_directory(path)) {
    auto d = hanul::SafetensorsDir::open(path);
    if (!d.ok()) return std::fprintf(stderr, "%s\n", d.message().c_str()), 1;
    out["format"] = "safetensors_dir";
    out["config_json"] = d->config_json();
    out["tensors"] = ordered_json::array();
    for (const Tensor& t : d->tensors()) out["tensors"].push_back(tensor_json(t));
  } else if (path.size() >= 5 && path.substr(path.size() - 5) == ".gguf") {
    auto f = hanul::GgufFile::open(path);
    if (!f.ok()) return std::fprintf(stderr, "%s\n", f.message().c_str()), 1;
    out["format"] = "gguf";
    out["version"] = f->version();
    out["metadata"] = ordered_json::object();
    for (const auto& [k, v] : f->metadata()) out["metadata"][k] = value_json(v);
    out["tensors"] = ordered_json::array();
    for (const Tensor& t : f->tensors()) out["tensors"].push_back(tensor_json(t));
  } else {
    auto f = hanul::SafetensorsFile::open(path);
    if (!f.ok()) return std::fprintf(stderr, "%s\n", f.message().c_str()), 1;
    out["format"] = "safetensors";
    out["metadata"] = f->metadata();
    out["tensors"] = ordered_json::array();
    for (const Tensor& t : f->tensors()) out["tensors"].push_back(tensor_json(t));
  }
  std::puts(out.dump(1, ' ', false, ordered_json::error_handler_t::replace).c_str());
  return 0;
}

// Deterministic bytes: byte i of tensor k is (i * 7 + k * 13) & 0xff. For float types this
// can give NaN patterns, which the byte-level comparison is indifferent to.
Tensor sample(const std::string& name, DType dtype, std::vector<int64_t> shape, int k) {
  Tensor t = Tensor::allocate(name, dtype, std::move(shape));
  auto* p = static_cast<uint8_t*>(t.mutable_data());
  for (int64_t i = 0; i < t.nbytes(); ++i) p[i] = static_cast<uint8_t>(i * 7 + k * 13);
  return t;
}

int write_sample(const std::string& out) {
  hanul::Status s;
  if (out.size() >= 5 && out.substr(out.size() - 5) == ".gguf") {
    hanul::GgufWriter w;
    auto scalar = [](GgufType t, decltype(GgufValue::value) v) {
      GgufValue g;
      g.type = t;
      g.value = std::move(v);
      return g;
    };
    auto array = [](GgufType e, decltype(GgufValue::value) v) {
      GgufValue g;
      g.type = GgufType::kArray;
      g.elem_type = e;
      g.value = std::move(v);
      return g;
    };
    w.set_string("general.architecture", "llama");
    w.set("s.u8", scalar(GgufType::kU8, uint64_t{200}));
    w.set("s.i8", scalar(GgufType::kI8, int64_t{-100}));
    w.set("s.u16", scalar(GgufType::kU16, uint64_t{60000}));
    w.set("s.i16", scalar(GgufType::kI16, int64_t{-30000}));
    w.set_u32("s.u32", 4000000000u);
    w.set_i32("s.i32", -2000000000);
    w.set_f32("s.f32", 0.1f);
    w.set_bool("s.bool", true);
    w.set_string("s.string", "h\xc3\xa0nul \xed\x95\x9c\xea\xb8\x80");
    w.set_u64("s.u64", 18000000000000000000ull);
    w.set("s.i64", scalar(GgufType::kI64, int64_t{-9000000000000000000}));
    w.set("s.f64", scalar(GgufType::kF64, 2.718281828459045));
    w.set_string_array("a.string", {"<unk>", "", "\xe2\x96\x81the"});
    w.set_f32_array("a.f32", {0.5, -1.25, 3e-8});
    w.set_i32_array("a.i32", {-7, 0, 2147483647});
    w.set_u32_array("a.u32", {0, 4294967295u});
    w.set("a.u8", array(GgufType::kU8, std::vector<uint64_t>{1, 2, 255}));
    w.set("a.i16", array(GgufType::kI16, std::vector<int64_t>{-32768, 32767}));
    w.set("a.u64", array(GgufType::kU64, std::vector<uint64_t>{1ull << 63}));
    w.set("a.i64", array(GgufType::kI64, std::vector<int64_t>{-1, 1}));
    w.set("a.f64", array(GgufType::kF64, std::vector<double>{1e-300, 1e300}));
    w.set("a.bool", array(GgufType::kBool, std::vector<uint64_t>{1, 0}));
    int k = 0;
    for (auto [name, dtype, shape] : std::vector<std::tuple<std::string, DType, std::vector<int64_t>>>{
             {"f32", DType::F32, {3, 5}},     {"f16", DType::F16, {2, 3, 4}},
             {"bf16", DType::BF16, {6}},      {"f64", DType::F64, {2, 2}},
             {"i8", DType::I8, {9}},          {"i16", DType::I16, {2, 5}},
             {"i32", DType::I32, {1, 1, 1, 3}}, {"i64", DType::I64, {4}},
             {"q4_0", DType::Q4_0, {3, 64}},  {"q8_0", DType::Q8_0, {2, 32}},
             {"q4_k", DType::Q4_K, {2, 256}}, {"q6_k", DType::Q6_K, {1, 512}}}) {
      w.add_tensor(sample(name, dtype, shape, k++));
    }
    s = w.write(out);
  } else {
    std::vector<Tensor> ts;
    int k = 0;
    for (auto [name, dtype, shape] : std::vector<std::tuple<std::string, DType, std::vector<int64_t>>>{
             {"model.embed_tokens.weight", DType::BF16, {8, 4}}, {"model.norm.weight", DType::F32, {4}},
             {"b.f16", DType::F16, {2, 3}}, {"a.f64", DType::F64, {3}}, {"c.i8", DType::I8, {5}},
             {"c.i16", DType::I16, {1, 3}}, {"c.i32", DType::I32, {2}}, {"c.i64", DType::I64, {}}}) {
      ts.push_back(sample(name, dtype, shape, k++));
    }
    s = hanul::write_safetensors(out, ts, {{"format", "pt"}});
  }
  if (!s.ok()) return std::fprintf(stderr, "%s\n", s.message().c_str()), 1;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "dump") == 0) return dump(argv[2]);
  if (argc == 3 && std::strcmp(argv[1], "write-sample") == 0) return write_sample(argv[2]);
  std::fprintf(stderr, "usage: formats_tool dump PATH | write-sample OUT.{gguf,safetensors}\n");
  return 2;
}
