// Errors on untrusted input come back as values: Status (ok or an Error) and
// Result<T> (a T or an Error). Messages say where, what and what to do, e.g.
// "gguf: tensor 'blk.3.attn_q.weight' ends at byte 9.1e9 but the file has 4.0e9".
// asserts are for our own bugs only.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace hanul {

struct Error {
  std::string message;
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error.message)), ok_(false) {}  // NOLINT: implicit on purpose
  static Status Ok() { return Status(); }

  bool ok() const { return ok_; }
  const std::string& message() const { return error_; }
  Error error() const { return Error{error_}; }

 private:
  std::string error_;
  bool ok_ = true;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit on purpose
  Result(Error error) : v_(std::move(error)) {}  // NOLINT
  Result(Status status) : v_(status.error()) {}  // NOLINT: only from a failed Status

  bool ok() const { return v_.index() == 0; }
  const std::string& message() const { return std::get<1>(v_).message; }
  Error error() const { return std::get<1>(v_); }
  Status status() const { return ok() ? Status() : Status(error()); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Error> v_;
};

}  // namespace hanul

// HANUL_TRY(expr): return the error of a failed Status/Result from the caller.
#define HANUL_TRY(expr)                                  \
  do {                                                   \
    auto&& hanul_try_ = (expr);                          \
    if (!hanul_try_.ok()) return hanul_try_.error();     \
  } while (0)

#define HANUL_CONCAT_INNER(a, b) a##b
#define HANUL_CONCAT(a, b) HANUL_CONCAT_INNER(a, b)
// HANUL_ASSIGN_OR_RETURN(auto x, expr): x = expr.value(), or return its error.
#define HANUL_ASSIGN_OR_RETURN(decl, expr)                          \
  auto HANUL_CONCAT(hanul_r_, __LINE__) = (expr);                   \
  if (!HANUL_CONCAT(hanul_r_, __LINE__).ok())                       \
    return HANUL_CONCAT(hanul_r_, __LINE__).error();                \
  decl = std::move(HANUL_CONCAT(hanul_r_, __LINE__)).value()
