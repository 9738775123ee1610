#include "hanul/base/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/core.h>

namespace hanul {

Result<std::shared_ptr<MappedFile>> MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error{fmt::format("{}: cannot open: {}", path, std::strerror(errno))};
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Error{fmt::format("{}: not a regular file", path)};
  }
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = static_cast<size_t>(st.st_size);
  if (const char* no_mmap = std::getenv("HANUL_NO_MMAP"); no_mmap && *no_mmap == '1' && f->size_ > 0) {
    auto* buf = new uint8_t[f->size_];
    size_t got = 0;
    while (got < f->size_) {
      ssize_t k = ::pread(fd, buf + got, f->size_ - got, static_cast<off_t>(got));
      if (k <= 0) {
        delete[] buf;
        ::close(fd);
        return Error{fmt::format("{}: read failed", path)};
      }
      got += static_cast<size_t>(k);
    }
    f->data_ = buf;
    f->heap_ = true;
  } else if (f->size_ > 0) {
    void* p = mmap(nullptr, f->size_, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      return Error{fmt::format("{}: mmap failed: {}", path, std::strerror(e))};
    }
    f->data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  return f;
}

MappedFile::~MappedFile() {
  if (heap_) delete[] data_;
  else if (data_) munmap(const_cast<uint8_t*>(data_), size_);
}

Result<std::unique_ptr<AtomicFileWriter>> AtomicFileWriter::create(const std::string& path) {
  std::unique_ptr<AtomicFileWriter> w(new AtomicFileWriter());
  w->path_ = path;
  w->tmp_path_ = fmt::format("{}.tmp.{}", path, static_cast<long>(getpid()));
  w->fd_ = ::open(w->tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (w->fd_ < 0) return Error{fmt::format("{}: cannot create: {}", w->tmp_path_, std::strerror(errno))};
  return w;
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_path_.c_str());
}

Status AtomicFileWriter::write(const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t k = ::write(fd_, p, n);
    if (k < 0) {
      if (errno == EINTR) continue;
      return Error{fmt::format("{}: write failed: {}", tmp_path_, std::strerror(errno))};
    }
    p += k;
    n -= static_cast<size_t>(k);
    offset_ += static_cast<uint64_t>(k);
  }
  return Status::Ok();
}

Status AtomicFileWriter::write_zeros(size_t n) {
  static const char kZeros[4096] = {};
  while (n > 0) {
    size_t k = n < sizeof(kZeros) ? n : sizeof(kZeros);
    HANUL_TRY(write(kZeros, k));
    n -= k;
  }
  return Status::Ok();
}

Status AtomicFileWriter::commit() {
  if (fsync(fd_) != 0) return Error{fmt::format("{}: fsync failed: {}", tmp_path_, std::strerror(errno))};
  ::close(fd_);
  fd_ = -1;
  if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0)
    return Error{fmt::format("{}: rename to {} failed: {}", tmp_path_, path_, std::strerror(errno))};
  committed_ = true;
  return Status::Ok();
}

Result<std::string> read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{fmt::format("{}: cannot open: {}", path, std::strerror(errno))};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Status write_file_atomic(const std::string& path, const std::string& contents) {
  HANUL_ASSIGN_OR_RETURN(auto w, AtomicFileWriter::create(path));
  HANUL_TRY(w->write(contents.data(), contents.size()));
  return w->commit();
}

}  // namespace hanul
