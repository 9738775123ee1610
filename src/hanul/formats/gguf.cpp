// GGUF reader and writer. Layout (ggml docs/gguf.md, v2 and v3, little-endian):
//   u32 magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
//   n_kv x { string key | u32 type | value }            (string = u64 len + bytes)
//   n_tensors x { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
//   padding to general.alignment (default 32) | tensor data (offsets relative to here)
// v1 used u32 counts and lengths and is refused. Every count, length and offset is
// checked against the bytes left in the file before anything is reserved or read.
#include "hanul/formats/gguf.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

#include <fmt/core.h>

namespace hanul {
namespace {

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint32_t kDefaultAlignment = 32;   // GGUF_DEFAULT_ALIGNMENT in ggml
constexpr uint32_t kMaxDims = 4;             // GGML_MAX_DIMS
constexpr uint32_t kMaxAlignment = 1u << 20;  // far above any real file; keeps padding small

static_assert(std::endian::native == std::endian::little, "hanul reads GGUF as little-endian");

bool valid_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::kF64); }

// Bytes one element of a type occupies at least (a string: its u64 length).
size_t min_size(GgufType t) {
  switch (t) {
    case GgufType::kU8: case GgufType::kI8: case GgufType::kBool: return 1;
    case GgufType::kU16: case GgufType::kI16: return 2;
    case GgufType::kU32: case GgufType::kI32: case GgufType::kF32: return 4;
    case GgufType::kU64: case GgufType::kI64: case GgufType::kF64: return 8;
    case GgufType::kString: return 8;
    case GgufType::kArray: return 4 + 8;
  }
  return 1;
}

bool is_unsigned(GgufType t) {
  return t == GgufType::kU8 || t == GgufType::kU16 || t == GgufType::kU32 || t == GgufType::kU64;
}
bool is_signed(GgufType t) {
  return t == GgufType::kI8 || t == GgufType::kI16 || t == GgufType::kI32 || t == GgufType::kI64;
}
bool is_float(GgufType t) { return t == GgufType::kF32 || t == GgufType::kF64; }

const char* type_name(GgufType t) {
  static const char* kNames[] = {"u8",  "i8",     "u16",   "i16", "u32", "i32", "f32",
                                 "bool", "string", "array", "u64", "i64", "f64"};
  auto i = static_cast<uint32_t>(t);
  return i < std::size(kNames) ? kNames[i] : "unknown";
}

// a + b <= limit without overflow.
bool fits(uint64_t a, uint64_t b, uint64_t limit) { return a <= limit && b <= limit - a; }

}  // namespace

// Parses one mapped file. A class (friend of GgufFile) so it can fill the private fields.
class GgufReader {
 public:
  explicit GgufReader(std::shared_ptr<MappedFile> file)
      : file_(std::move(file)), p_(file_->data()), size_(file_->size()) {}

  Result<GgufFile> read();

 private:
  Error fail(std::string what) const {
    return Error{fmt::format("{}: gguf: {}", file_->path(), what)};
  }
  size_t left() const { return size_ - pos_; }

  Status need(size_t n, std::string_view what) {
    if (n > left())
      return fail(fmt::format("{} needs {} bytes at offset {} but the file has only {} left "
                              "(truncated or corrupt file)",
                              what, n, pos_, left()));
    return Status::Ok();
  }

  template <class T>
  Status read_raw(T* out, std::string_view what) {
    HANUL_TRY(need(sizeof(T), what));
    std::memcpy(out, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return Status::Ok();
  }

  Status read_string(std::string* out, std::string_view what) {
    uint64_t n = 0;
    HANUL_TRY(read_raw(&n, what));
    if (n > left())
      return fail(fmt::format("{} has length {} at offset {} but only {} bytes are left", what, n,
                              pos_ - 8, left()));
    out->assign(reinterpret_cast<const char*>(p_ + pos_), static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return Status::Ok();
  }

  template <class T>
  Status read_num(GgufType t, T* out, std::string_view what) {
    switch (t) {
#define HANUL_CASE(TYPE, CTYPE)                 \
  case GgufType::TYPE: {                        \
    CTYPE v{};                                  \
    HANUL_TRY(read_raw(&v, what));              \
    *out = static_cast<T>(v);                   \
    return Status::Ok();                        \
  }
      HANUL_CASE(kU8, uint8_t)
      HANUL_CASE(kI8, int8_t)
      HANUL_CASE(kU16, uint16_t)
      HANUL_CASE(kI16, int16_t)
      HANUL_CASE(kU32, uint32_t)
      HANUL_CASE(kI32, int32_t)
      HANUL_CASE(kU64, uint64_t)
      HANUL_CASE(kI64, int64_t)
      HANUL_CASE(kF32, float)
      HANUL_CASE(kF64, double)
#undef HANUL_CASE
      default:
        return fail(fmt::format("{}: not a number type", what));
    }
  }

  Status read_value(GgufType t, GgufValue* out, const std::string& key);
  Status read_array(GgufValue* out, const std::string& key);

  std::shared_ptr<MappedFile> file_;
  const uint8_t* p_;
  size_t size_;
  size_t pos_ = 0;
};

Status GgufReader::read_value(GgufType t, GgufValue* out, const std::string& key) {
  out->type = t;
  std::string what = fmt::format("value of key '{}'", key);
  if (is_unsigned(t)) {
    uint64_t v = 0;
    HANUL_TRY(read_num(t, &v, what));
    out->value = v;
  } else if (is_signed(t)) {
    int64_t v = 0;
    HANUL_TRY(read_num(t, &v, what));
    out->value = v;
  } else if (is_float(t)) {
    double v = 0;
    HANUL_TRY(read_num(t, &v, what));
    out->value = v;
  } else if (t == GgufType::kBool) {
    uint8_t v = 0;
    HANUL_TRY(read_raw(&v, what));
    out->value = v != 0;
  } else if (t == GgufType::kString) {
    std::string s;
    HANUL_TRY(read_string(&s, what));
    out->value = std::move(s);
  } else {
    return read_array(out, key);
  }
  return Status::Ok();
}

Status GgufReader::read_array(GgufValue* out, const std::string& key) {
  uint32_t et = 0;
  HANUL_TRY(read_raw(&et, fmt::format("element type of array '{}'", key)));
  if (!valid_type(et))
    return fail(fmt::format("array '{}' has unknown element type {}", key, et));
  GgufType elem = static_cast<GgufType>(et);
  if (elem == GgufType::kArray)
    // ggml's gguf.cpp refuses these too; no model file uses them.
    return fail(fmt::format("array '{}' holds arrays; nested arrays are not supported", key));
  uint64_t n = 0;
  HANUL_TRY(read_raw(&n, fmt::format("length of array '{}'", key)));
  if (n > left() / min_size(elem))
    return fail(fmt::format("array '{}' claims {} elements of type {} but only {} bytes are left",
                            key, n, type_name(elem), left()));
  out->type = GgufType::kArray;
  out->elem_type = elem;
  std::string what = fmt::format("element of array '{}'", key);
  const size_t count = static_cast<size_t>(n);
  if (is_unsigned(elem) || elem == GgufType::kBool) {
    std::vector<uint64_t> v(count);
    for (auto& x : v) {
      if (elem == GgufType::kBool) {
        uint8_t b = 0;
        HANUL_TRY(read_raw(&b, what));
        x = b != 0;
      } else {
        HANUL_TRY(read_num(elem, &x, what));
      }
    }
    out->value = std::move(v);
  } else if (is_signed(elem)) {
    std::vector<int64_t> v(count);
    for (auto& x : v) HANUL_TRY(read_num(elem, &x, what));
    out->value = std::move(v);
  } else if (is_float(elem)) {
    std::vector<double> v(count);
    for (auto& x : v) HANUL_TRY(read_num(elem, &x, what));
    out->value = std::move(v);
  } else {  // strings: the count check above bounds this at left()/8 entries
    std::vector<std::string> v(count);
    for (auto& x : v) HANUL_TRY(read_string(&x, what));
    out->value = std::move(v);
  }
  return Status::Ok();
}

Result<GgufFile> GgufReader::read() {
  uint32_t magic = 0, version = 0;
  if (size_ < 4) return fail(fmt::format("file is {} bytes, too short to be GGUF", size_));
  HANUL_TRY(read_raw(&magic, "magic"));
  if (magic != kGgufMagic) {
    if (magic == 0x47475546)
      return fail("magic is byte-swapped: big-endian GGUF files are not supported");
    return fail(fmt::format("bad magic 0x{:08x}: not a GGUF file", magic));
  }
  HANUL_TRY(read_raw(&version, "version"));
  if (version == 1)
    return fail("GGUF v1 is not supported (it predates 64-bit counts); re-convert the model "
                "with a current llama.cpp");
  if (version != 2 && version != 3)
    return fail(fmt::format("unsupported GGUF version {} (hanul reads v2 and v3)", version));
  uint64_t n_tensors = 0, n_kv = 0;
  HANUL_TRY(read_raw(&n_tensors, "tensor count"));
  HANUL_TRY(read_raw(&n_kv, "metadata count"));
  // Smallest possible entries: key (8) + type (4) + one byte; name (8) + n_dims (4) + type (4)
  // + offset (8).
  if (n_kv > left() / 13)
    return fail(fmt::format("header claims {} metadata entries but only {} bytes follow", n_kv,
                            left()));
  if (n_tensors > left() / 24)
    return fail(fmt::format("header claims {} tensors but only {} bytes follow", n_tensors, left()));

  GgufFile out;
  out.version_ = version;
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key;
    HANUL_TRY(read_string(&key, fmt::format("key of metadata entry {}", i)));
    uint32_t t = 0;
    HANUL_TRY(read_raw(&t, fmt::format("type of key '{}'", key)));
    if (!valid_type(t)) return fail(fmt::format("key '{}' has unknown type {}", key, t));
    GgufValue v;
    HANUL_TRY(read_value(static_cast<GgufType>(t), &v, key));
    if (out.kv_.count(key)) return fail(fmt::format("duplicate metadata key '{}'", key));
    out.kv_.emplace(std::move(key), std::move(v));
  }

  uint64_t alignment = kDefaultAlignment;
  if (const GgufValue* a = out.find("general.alignment")) {
    auto v = out.get_int("general.alignment");
    if (a->type == GgufType::kArray || !v || *v <= 0 || *v > kMaxAlignment ||
        !std::has_single_bit(static_cast<uint64_t>(*v)))
      return fail("general.alignment must be a power of two integer (at most 1 MiB)");
    alignment = static_cast<uint64_t>(*v);
  }

  struct Info {
    uint64_t offset;
    uint64_t nbytes;
  };
  std::vector<Info> infos;
  infos.reserve(static_cast<size_t>(n_tensors));
  out.tensors_.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    Tensor t;
    HANUL_TRY(read_string(&t.name, fmt::format("name of tensor {}", i)));
    const std::string& name = t.name;
    uint32_t n_dims = 0;
    HANUL_TRY(read_raw(&n_dims, fmt::format("n_dims of tensor '{}'", name)));
    if (n_dims > kMaxDims)
      return fail(fmt::format("tensor '{}' has {} dims; at most {} are allowed", name, n_dims,
                              kMaxDims));
    uint64_t ne[kMaxDims] = {1, 1, 1, 1};
    for (uint32_t d = 0; d < n_dims; ++d)
      HANUL_TRY(read_raw(&ne[d], fmt::format("ne[{}] of tensor '{}'", d, name)));
    uint32_t type_id = 0;
    uint64_t offset = 0;
    HANUL_TRY(read_raw(&type_id, fmt::format("type of tensor '{}'", name)));
    HANUL_TRY(read_raw(&offset, fmt::format("offset of tensor '{}'", name)));

    auto dtype = dtype_from_id(type_id);
    if (!dtype)
      return fail(fmt::format("tensor '{}' has ggml type {}, which hanul does not support", name,
                              type_id));
    const DTypeInfo info = *dtype_info(*dtype);
    // numel and bytes must fit int64 (the ne[] are u64 on disk but int64 in ggml).
    uint64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      if (ne[d] == 0)
        return fail(fmt::format("tensor '{}' has a zero-sized dimension ne[{}]", name, d));
      if (ne[d] > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / numel)
        return fail(fmt::format("tensor '{}' is too large: the product of its dims overflows",
                                name));
      numel *= ne[d];
    }
    if (ne[0] % static_cast<uint64_t>(info.block_size) != 0)
      return fail(fmt::format("tensor '{}' of type {} has ne[0] = {}, not a multiple of its "
                              "block size {}",
                              name, info.name, ne[0], info.block_size));
    uint64_t blocks = numel / static_cast<uint64_t>(info.block_size);
    if (blocks > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) /
                     static_cast<uint64_t>(info.type_size))
      return fail(fmt::format("tensor '{}' is too large: its byte size overflows", name));
    uint64_t nbytes = blocks * static_cast<uint64_t>(info.type_size);
    if (offset % alignment != 0)
      return fail(fmt::format("tensor '{}' has offset {}, not a multiple of the alignment {}",
                              name, offset, alignment));
    t.dtype = *dtype;
    for (uint32_t d = n_dims; d-- > 0;) t.shape.push_back(static_cast<int64_t>(ne[d]));
    if (out.index_.count(name)) return fail(fmt::format("duplicate tensor name '{}'", name));
    out.index_.emplace(name, out.tensors_.size());
    infos.push_back({offset, nbytes});
    out.tensors_.push_back(std::move(t));
  }

  // Tensor data starts at the next multiple of the alignment after the header.
  const uint64_t data_start = (pos_ + alignment - 1) / alignment * alignment;
  if (!out.tensors_.empty() && data_start > size_)
    return fail(fmt::format("tensor data would start at byte {} but the file has {}", data_start,
                            size_));
  const uint64_t data_size = out.tensors_.empty() ? 0 : size_ - data_start;
  for (size_t i = 0; i < infos.size(); ++i) {
    if (!fits(infos[i].offset, infos[i].nbytes, data_size))
      return fail(fmt::format("tensor '{}' ({} bytes at data offset {}) ends past the end of the "
                              "file: data section has {} bytes (truncated file?)",
                              out.tensors_[i].name, infos[i].nbytes, infos[i].offset, data_size));
  }
  std::vector<size_t> order(infos.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return infos[a].offset < infos[b].offset; });
  for (size_t k = 1; k < order.size(); ++k) {
    const Info& prev = infos[order[k - 1]];
    if (prev.offset + prev.nbytes > infos[order[k]].offset)
      return fail(fmt::format("tensors '{}' and '{}' overlap", out.tensors_[order[k - 1]].name,
                              out.tensors_[order[k]].name));
  }
  // Views into the mapping; the aliasing shared_ptr keeps the whole file mapped.
  for (size_t i = 0; i < infos.size(); ++i) {
    Tensor& t = out.tensors_[i];
    t.data = p_ + data_start + infos[i].offset;
    t.owner = std::shared_ptr<const void>(file_, t.data);
  }
  out.file_ = file_;
  return out;
}

Result<GgufFile> GgufFile::open(const std::string& path) {
  HANUL_ASSIGN_OR_RETURN(auto file, MappedFile::open(path));
  return GgufReader(std::move(file)).read();
}

const std::string& GgufFile::path() const {
  static const std::string kEmpty;
  return file_ ? file_->path() : kEmpty;
}

size_t GgufFile::file_size() const { return file_ ? file_->size() : 0; }

const Tensor* GgufFile::find_tensor(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = kv_.find(key);
  return it == kv_.end() ? nullptr : &it->second;
}

std::optional<std::string> GgufFile::get_string(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v || v->type != GgufType::kString) return std::nullopt;
  return std::get<std::string>(v->value);
}

std::optional<int64_t> GgufFile::get_int(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (is_signed(v->type)) return std::get<int64_t>(v->value);
  if (is_unsigned(v->type)) {
    uint64_t u = std::get<uint64_t>(v->value);
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  return std::nullopt;
}

std::optional<double> GgufFile::get_float(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (is_float(v->type)) return std::get<double>(v->value);
  if (is_signed(v->type)) return static_cast<double>(std::get<int64_t>(v->value));
  if (is_unsigned(v->type)) return static_cast<double>(std::get<uint64_t>(v->value));
  return std::nullopt;
}

std::optional<bool> GgufFile::get_bool(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v || v->type != GgufType::kBool) return std::nullopt;
  return std::get<bool>(v->value);
}

const std::vector<std::string>* GgufFile::get_string_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v || v->type != GgufType::kArray || v->elem_type != GgufType::kString) return nullptr;
  return &std::get<std::vector<std::string>>(v->value);
}

std::optional<std::vector<int64_t>> GgufFile::get_int_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v || v->type != GgufType::kArray) return std::nullopt;
  if (is_signed(v->elem_type)) return std::get<std::vector<int64_t>>(v->value);
  if (!is_unsigned(v->elem_type)) return std::nullopt;
  const auto& u = std::get<std::vector<uint64_t>>(v->value);
  std::vector<int64_t> out;
  out.reserve(u.size());
  for (uint64_t x : u) {
    if (x > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    out.push_back(static_cast<int64_t>(x));
  }
  return out;
}

std::optional<std::vector<double>> GgufFile::get_float_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v || v->type != GgufType::kArray) return std::nullopt;
  if (is_float(v->elem_type)) return std::get<std::vector<double>>(v->value);
  std::vector<double> out;
  if (is_signed(v->elem_type)) {
    for (int64_t x : std::get<std::vector<int64_t>>(v->value)) out.push_back(static_cast<double>(x));
    return out;
  }
  if (is_unsigned(v->elem_type)) {
    for (uint64_t x : std::get<std::vector<uint64_t>>(v->value))
      out.push_back(static_cast<double>(x));
    return out;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Writer

namespace {

template <class T>
void put(std::string* buf, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  buf->append(b, sizeof(T));
}

void put_string(std::string* buf, const std::string& s) {
  put<uint64_t>(buf, s.size());
  buf->append(s);
}

// Appends one number of type t; refuses a value that does not fit it.
template <class V>
Status put_num(std::string* buf, GgufType t, V v, const std::string& key) {
  auto bad = [&]() {
    return Error{fmt::format("gguf writer: key '{}': value does not fit type {}", key,
                             type_name(t))};
  };
  switch (t) {
#define HANUL_PUT(TYPE, CTYPE)                                                                 \
  case GgufType::TYPE:                                                                         \
    if constexpr (std::is_floating_point_v<V>) return bad();                                   \
    else if (!std::in_range<CTYPE>(v)) return bad();                                           \
    put<CTYPE>(buf, static_cast<CTYPE>(v));                                                    \
    return Status::Ok();
    HANUL_PUT(kU8, uint8_t)
    HANUL_PUT(kI8, int8_t)
    HANUL_PUT(kU16, uint16_t)
    HANUL_PUT(kI16, int16_t)
    HANUL_PUT(kU32, uint32_t)
    HANUL_PUT(kI32, int32_t)
    HANUL_PUT(kU64, uint64_t)
    HANUL_PUT(kI64, int64_t)
#undef HANUL_PUT
    case GgufType::kF32: {
      // A finite double beyond float's range has no f32 (and the cast would be UB).
      const double d = static_cast<double>(v);
      if (std::isfinite(d) && std::fabs(d) > std::numeric_limits<float>::max()) return bad();
      put<float>(buf, static_cast<float>(d));
      return Status::Ok();
    }
    case GgufType::kF64:
      put<double>(buf, static_cast<double>(v));
      return Status::Ok();
    default:
      return bad();
  }
}

// Holds `Alt` in the variant, or an error naming the key.
template <class Alt>
Result<const Alt*> holds(const GgufValue& v, const std::string& key) {
  if (const Alt* p = std::get_if<Alt>(&v.value)) return p;
  return Error{fmt::format("gguf writer: key '{}' of type {} holds a value of another kind", key,
                           type_name(v.type == GgufType::kArray ? v.elem_type : v.type))};
}

template <class Vec>
Status put_elems(std::string* buf, GgufType t, const Vec& v, const std::string& key) {
  for (const auto& x : v) HANUL_TRY(put_num(buf, t, x, key));
  return Status::Ok();
}

Status put_value(std::string* buf, const GgufValue& v, const std::string& key) {
  if (!valid_type(static_cast<uint32_t>(v.type)))
    return Error{fmt::format("gguf writer: key '{}' has an invalid type", key)};
  put<uint32_t>(buf, static_cast<uint32_t>(v.type));
  GgufType t = v.type;
  if (t == GgufType::kArray) {
    GgufType e = v.elem_type;
    if (e == GgufType::kArray || !valid_type(static_cast<uint32_t>(e)))
      return Error{fmt::format("gguf writer: array '{}' has an unsupported element type", key)};
    put<uint32_t>(buf, static_cast<uint32_t>(e));
    if (e == GgufType::kString) {
      HANUL_ASSIGN_OR_RETURN(auto p, holds<std::vector<std::string>>(v, key));
      put<uint64_t>(buf, p->size());
      for (const auto& s : *p) put_string(buf, s);
    } else if (e == GgufType::kBool) {
      HANUL_ASSIGN_OR_RETURN(auto p, holds<std::vector<uint64_t>>(v, key));
      put<uint64_t>(buf, p->size());
      for (uint64_t x : *p) put<uint8_t>(buf, x != 0);
    } else if (is_unsigned(e)) {
      HANUL_ASSIGN_OR_RETURN(auto p, holds<std::vector<uint64_t>>(v, key));
      put<uint64_t>(buf, p->size());
      HANUL_TRY(put_elems(buf, e, *p, key));
    } else if (is_signed(e)) {
      HANUL_ASSIGN_OR_RETURN(auto p, holds<std::vector<int64_t>>(v, key));
      put<uint64_t>(buf, p->size());
      HANUL_TRY(put_elems(buf, e, *p, key));
    } else {
      HANUL_ASSIGN_OR_RETURN(auto p, holds<std::vector<double>>(v, key));
      put<uint64_t>(buf, p->size());
      HANUL_TRY(put_elems(buf, e, *p, key));
    }
    return Status::Ok();
  }
  if (t == GgufType::kString) {
    HANUL_ASSIGN_OR_RETURN(auto p, holds<std::string>(v, key));
    put_string(buf, *p);
  } else if (t == GgufType::kBool) {
    HANUL_ASSIGN_OR_RETURN(auto p, holds<bool>(v, key));
    put<uint8_t>(buf, *p ? 1 : 0);
  } else if (is_unsigned(t)) {
    HANUL_ASSIGN_OR_RETURN(auto p, holds<uint64_t>(v, key));
    HANUL_TRY(put_num(buf, t, *p, key));
  } else if (is_signed(t)) {
    HANUL_ASSIGN_OR_RETURN(auto p, holds<int64_t>(v, key));
    HANUL_TRY(put_num(buf, t, *p, key));
  } else {
    HANUL_ASSIGN_OR_RETURN(auto p, holds<double>(v, key));
    HANUL_TRY(put_num(buf, t, *p, key));
  }
  return Status::Ok();
}

GgufValue scalar(GgufType t, decltype(GgufValue::value) v) {
  GgufValue out;
  out.type = t;
  out.value = std::move(v);
  return out;
}

GgufValue array(GgufType elem, decltype(GgufValue::value) v) {
  GgufValue out;
  out.type = GgufType::kArray;
  out.elem_type = elem;
  out.value = std::move(v);
  return out;
}

}  // namespace

void GgufWriter::set(std::string key, GgufValue value) {
  for (auto& [k, v] : kv_) {
    if (k == key) {  // replace in place: keeps the first insertion's position
      v = std::move(value);
      return;
    }
  }
  kv_.emplace_back(std::move(key), std::move(value));
}

void GgufWriter::set_string(std::string key, std::string v) {
  set(std::move(key), scalar(GgufType::kString, std::move(v)));
}
void GgufWriter::set_u32(std::string key, uint32_t v) {
  set(std::move(key), scalar(GgufType::kU32, uint64_t{v}));
}
void GgufWriter::set_i32(std::string key, int32_t v) {
  set(std::move(key), scalar(GgufType::kI32, int64_t{v}));
}
void GgufWriter::set_u64(std::string key, uint64_t v) {
  set(std::move(key), scalar(GgufType::kU64, v));
}
void GgufWriter::set_f32(std::string key, float v) {
  set(std::move(key), scalar(GgufType::kF32, double{v}));
}
void GgufWriter::set_bool(std::string key, bool v) {
  set(std::move(key), scalar(GgufType::kBool, v));
}
void GgufWriter::set_string_array(std::string key, std::vector<std::string> v) {
  set(std::move(key), array(GgufType::kString, std::move(v)));
}
void GgufWriter::set_f32_array(std::string key, std::vector<double> v) {
  set(std::move(key), array(GgufType::kF32, std::move(v)));
}
void GgufWriter::set_i32_array(std::string key, std::vector<int64_t> v) {
  set(std::move(key), array(GgufType::kI32, std::move(v)));
}
void GgufWriter::set_u32_array(std::string key, std::vector<uint64_t> v) {
  set(std::move(key), array(GgufType::kU32, std::move(v)));
}
void GgufWriter::add_tensor(const Tensor& t) { tensors_.push_back(t); }

Status GgufWriter::write(const std::string& path, uint32_t alignment) const {
  auto fail = [&](std::string what) { return Error{fmt::format("{}: gguf writer: {}", path, what)}; };
  if (alignment == 0 || !std::has_single_bit(alignment) || alignment > kMaxAlignment)
    return fail(fmt::format("alignment {} is not a power of two up to 1 MiB", alignment));

  // general.alignment must agree with the alignment used; add it when not the default.
  std::vector<std::pair<std::string, GgufValue>> kv = kv_;
  bool has_alignment = false;
  for (const auto& [k, v] : kv) {
    if (k != "general.alignment") continue;
    has_alignment = true;
    const uint64_t* u = std::get_if<uint64_t>(&v.value);
    if (v.type != GgufType::kU32 || !u || *u != alignment)
      return fail(fmt::format("general.alignment must be a u32 equal to the alignment {}",
                              alignment));
  }
  if (!has_alignment && alignment != kDefaultAlignment)
    kv.emplace_back("general.alignment", scalar(GgufType::kU32, uint64_t{alignment}));

  std::string header;
  put<uint32_t>(&header, kGgufMagic);
  put<uint32_t>(&header, 3);
  put<uint64_t>(&header, tensors_.size());
  put<uint64_t>(&header, kv.size());
  for (const auto& [k, v] : kv) {
    put_string(&header, k);
    HANUL_TRY(put_value(&header, v, k));
  }

  std::vector<uint64_t> offsets;
  std::map<std::string_view, int> names;
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    auto info = dtype_info(t.dtype);
    if (!info) return fail(fmt::format("tensor '{}' has an unknown dtype", t.name));
    if (t.shape.size() > kMaxDims)
      return fail(fmt::format("tensor '{}' has {} dims; GGUF allows at most {}", t.name,
                              t.shape.size(), kMaxDims));
    for (int64_t d : t.shape)
      if (d <= 0) return fail(fmt::format("tensor '{}' has shape {}", t.name, t.shape_str()));
    if (t.cols() % info->block_size != 0)
      return fail(fmt::format("tensor '{}' of type {}: last dim {} is not a multiple of {}",
                              t.name, info->name, t.cols(), info->block_size));
    if (!t.data) return fail(fmt::format("tensor '{}' has no data", t.name));
    if (!names.emplace(t.name, 0).second)
      return fail(fmt::format("duplicate tensor name '{}'", t.name));
    put_string(&header, t.name);
    // A 0-D tensor is written as 1-D of one element (GGUF has no scalars in practice).
    put<uint32_t>(&header, t.shape.empty() ? 1 : static_cast<uint32_t>(t.shape.size()));
    if (t.shape.empty()) put<uint64_t>(&header, 1);
    for (size_t d = t.shape.size(); d-- > 0;) put<uint64_t>(&header, t.shape[d]);
    put<uint32_t>(&header, static_cast<uint32_t>(t.dtype));
    put<uint64_t>(&header, offset);
    offsets.push_back(offset);
    offset += (static_cast<uint64_t>(t.nbytes()) + alignment - 1) / alignment * alignment;
  }

  HANUL_ASSIGN_OR_RETURN(auto w, AtomicFileWriter::create(path));
  HANUL_TRY(w->write(header.data(), header.size()));
  auto pad = [&]() { return w->write_zeros((alignment - w->offset() % alignment) % alignment); };
  HANUL_TRY(pad());
  for (const Tensor& t : tensors_) {
    HANUL_TRY(w->write(t.data, static_cast<size_t>(t.nbytes())));
    HANUL_TRY(pad());  // gguf-py and ggml pad after every tensor, the last one included
  }
  return w->commit();
}

}  // namespace hanul
