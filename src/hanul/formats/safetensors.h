// Hugging Face safetensors (huggingface/safetensors: an 8-byte little-endian
// header length, a JSON header of {name: {dtype, shape, data_offsets}} and an
// optional "__metadata__" string map, then the raw data). Read by mmap; every
// header entry is checked against the file (bounds, dtype, shape x dtype size
// == byte range, no overlaps) before a tensor view is made.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "hanul/base/mapped_file.h"
#include "hanul/base/result.h"
#include "hanul/tensor/tensor.h"

namespace hanul {

class SafetensorsFile {
 public:
  static Result<SafetensorsFile> open(const std::string& path);
  const std::string& path() const;
  // In file order (by data offset), as the reference implementation lists them.
  const std::vector<Tensor>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::shared_ptr<MappedFile> file_;
  std::vector<Tensor> tensors_;
  std::map<std::string, std::string> metadata_;
  friend class SafetensorsReader;
};

// A Hugging Face model folder: config.json, model.safetensors or shards listed
// in model.safetensors.index.json, and the tokenizer files beside them.
class SafetensorsDir {
 public:
  static Result<SafetensorsDir> open(const std::string& dir);
  const std::string& dir() const { return dir_; }
  const std::vector<Tensor>& tensors() const { return tensors_; }
  const Tensor* find_tensor(std::string_view name) const;
  const std::string& config_json() const { return config_json_; }  // "" when absent

 private:
  std::string dir_;
  std::string config_json_;
  std::vector<SafetensorsFile> files_;
  std::vector<Tensor> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
};

// Writes one .safetensors file atomically. Only plain dtypes (F32, F16, BF16,
// F64, I8..I64); a quantized tensor is refused. Byte-identical to what the Rust
// reference writes for the same tensors (sorted by dtype, then name).
Status write_safetensors(const std::string& path, const std::vector<Tensor>& tensors,
                         const std::map<std::string, std::string>& metadata = {});

// Writes tensors into dir as model.safetensors, or as model-0000i-of-0000n
// shards plus model.safetensors.index.json when they exceed max_shard_bytes.
Status write_safetensors_dir(const std::string& dir, const std::vector<Tensor>& tensors,
                             int64_t max_shard_bytes = int64_t{5} << 30);

}  // namespace hanul
