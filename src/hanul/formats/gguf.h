// GGUF v2/v3 (llama.cpp's model file: docs/gguf.md in ggml). Read by mmap:
// tensors are views into the file. Every offset, count and size is checked
// against the file before use; a bad file is refused with a message that
// names the file and the problem.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "hanul/base/mapped_file.h"
#include "hanul/base/result.h"
#include "hanul/tensor/tensor.h"

namespace hanul {

// GGUF metadata value types (gguf_type in ggml).
enum class GgufType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};

// One metadata value. Scalars keep their GGUF type; arrays keep the element
// type and hold their elements in the vector of matching kind. Unsigned
// integers are uint64_t, signed int64_t, floats double; an array of bools is
// a vector<uint64_t> of 0/1 with elem_type kBool. Arrays of arrays are refused
// when reading (as ggml's gguf.cpp does) and cannot be written.
struct GgufValue {
  GgufType type = GgufType::kU32;
  GgufType elem_type = GgufType::kU32;  // for arrays
  std::variant<uint64_t, int64_t, double, bool, std::string, std::vector<uint64_t>,
               std::vector<int64_t>, std::vector<double>, std::vector<std::string>>
      value;
};

class GgufFile {
 public:
  static Result<GgufFile> open(const std::string& path);

  const std::string& path() const;
  uint32_t version() const { return version_; }
  size_t file_size() const;
  const std::vector<Tensor>& tensors() const { return tensors_; }
  const Tensor* find_tensor(std::string_view name) const;
  const std::map<std::string, GgufValue, std::less<>>& metadata() const { return kv_; }
  const GgufValue* find(std::string_view key) const;

  // Typed look-ups: nullopt when the key is missing or of another kind
  // (any integer type converts to int64, any float or integer to double).
  std::optional<std::string> get_string(std::string_view key) const;
  std::optional<int64_t> get_int(std::string_view key) const;
  std::optional<double> get_float(std::string_view key) const;
  std::optional<bool> get_bool(std::string_view key) const;
  const std::vector<std::string>* get_string_array(std::string_view key) const;
  std::optional<std::vector<int64_t>> get_int_array(std::string_view key) const;
  std::optional<std::vector<double>> get_float_array(std::string_view key) const;

 private:
  std::shared_ptr<MappedFile> file_;
  uint32_t version_ = 0;
  std::map<std::string, GgufValue, std::less<>> kv_;
  std::vector<Tensor> tensors_;
  std::map<std::string, size_t, std::less<>> index_;  // tensor name -> position in tensors_
  friend class GgufReader;
};

// Builds a GGUF v3 file: metadata in insertion order, then tensor infos, then
// aligned tensor data. Tensors are views; their data must stay alive until
// write() returns. Written atomically (temp file + rename).
class GgufWriter {
 public:
  void set(std::string key, GgufValue value);
  void set_string(std::string key, std::string v);
  void set_u32(std::string key, uint32_t v);
  void set_i32(std::string key, int32_t v);
  void set_u64(std::string key, uint64_t v);
  void set_f32(std::string key, float v);
  void set_bool(std::string key, bool v);
  void set_string_array(std::string key, std::vector<std::string> v);
  void set_f32_array(std::string key, std::vector<double> v);
  void set_i32_array(std::string key, std::vector<int64_t> v);
  void set_u32_array(std::string key, std::vector<uint64_t> v);
  void add_tensor(const Tensor& t);
  Status write(const std::string& path, uint32_t alignment = 32) const;

 private:
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<Tensor> tensors_;
};

}  // namespace hanul
