// A read-only memory map of a whole file: weights are views into it, so a
// model loads without copying (DESIGN: "Weights are views").
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "hanul/base/result.h"

namespace hanul {

class MappedFile {
 public:
  // With HANUL_NO_MMAP=1 in the environment the file is read into a heap
  // buffer of exactly its size instead, so AddressSanitizer sees any read
  // past the end (the fuzz tests run that way).
  static Result<std::shared_ptr<MappedFile>> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool heap_ = false;
};

// Writes a file atomically: everything goes to PATH.tmp.PID, which is renamed
// over PATH on commit(); a writer destroyed before commit() removes the temp
// file, so a killed or failed write never leaves a half-written PATH.
class AtomicFileWriter {
 public:
  static Result<std::unique_ptr<AtomicFileWriter>> create(const std::string& path);
  ~AtomicFileWriter();
  Status write(const void* data, size_t n);
  Status write_zeros(size_t n);
  uint64_t offset() const { return offset_; }
  Status commit();

 private:
  AtomicFileWriter() = default;
  std::string path_, tmp_path_;
  int fd_ = -1;
  uint64_t offset_ = 0;
  bool committed_ = false;
};

// Reads a whole (small) file into a string: config.json, tokenizer.json.
Result<std::string> read_text_file(const std::string& path);
Status write_file_atomic(const std::string& path, const std::string& contents);

}  // namespace hanul
