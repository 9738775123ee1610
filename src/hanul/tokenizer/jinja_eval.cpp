#include "hanul/tokenizer/jinja_eval.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <vector>

#include <fmt/core.h>

#include "hanul/tokenizer/jinja_parser.h"

namespace hanul::jinja {
namespace {

using K = Value::Kind;

// ---- UTF-8 code points, for len(), slicing, strip() and friends ----------

// Decodes the code point at s[pos] (a bad byte counts as one code point of itself).
uint32_t decode(const std::string& s, size_t pos, size_t* len) {
  const auto c = static_cast<unsigned char>(s[pos]);
  int n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
  if (pos + n > s.size()) n = 1;
  uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
  for (int k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[pos + k]) & 0x3F);
  *len = static_cast<size_t>(n);
  return cp;
}

std::vector<std::string> code_points(const std::string& s) {
  std::vector<std::string> out;
  for (size_t pos = 0; pos < s.size();) {
    size_t n = 0;
    decode(s, pos, &n);
    out.push_back(s.substr(pos, n));
    pos += n;
  }
  return out;
}

// Python's str.isspace().
bool is_py_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

// str.strip/lstrip/rstrip([chars]).
std::string strip(const std::string& s, bool left, bool right, const Value* chars) {
  std::vector<std::string> cps = code_points(s);
  std::vector<std::string> set;
  if (chars && chars->is_string()) set = code_points(chars->s);
  auto strip_me = [&](const std::string& cp) {
    if (chars && chars->is_string()) return std::find(set.begin(), set.end(), cp) != set.end();
    size_t n = 0;
    return is_py_space(decode(cp, 0, &n));
  };
  size_t b = 0, e = cps.size();
  if (left) while (b < e && strip_me(cps[b])) ++b;
  if (right) while (e > b && strip_me(cps[e - 1])) --e;
  std::string out;
  for (size_t k = b; k < e; ++k) out += cps[k];
  return out;
}

// ASCII case mapping (Hangul has no case; other scripts pass through unchanged).
std::string ascii_upper(std::string s) {
  for (char& c : s) if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
  return s;
}
std::string ascii_lower(std::string s) {
  for (char& c : s) if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  return s;
}
std::string capitalize(const std::string& s) {
  if (s.empty()) return s;
  return ascii_upper(s.substr(0, 1)) + ascii_lower(s.substr(1));
}
bool is_ascii_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
// Python's str.title(): a letter after a non-letter starts a word.
std::string py_title(const std::string& s) {
  std::string out = s;
  bool prev_cased = false;
  for (char& c : out) {
    if (is_ascii_alpha(c)) {
      c = prev_cased ? ascii_lower(std::string(1, c))[0] : ascii_upper(std::string(1, c))[0];
      prev_cased = true;
    } else {
      prev_cased = static_cast<unsigned char>(c) >= 0x80 && prev_cased;
    }
  }
  return out;
}
// Jinja's title filter: words start after runs of [-\s({[<].
std::string jinja_title(const std::string& s) {
  std::string out;
  bool word_start = true;
  for (char c : s) {
    const bool sep = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || c == ' ' || c == '\t' ||
                     c == '\n' || c == '\r' || c == '\f' || c == '\v';
    if (sep) {
      out += c;
      word_start = true;
    } else {
      out += word_start ? ascii_upper(std::string(1, c))[0] : ascii_lower(std::string(1, c))[0];
      word_start = false;
    }
  }
  return out;
}

std::string py_replace(const std::string& s, const std::string& from, const std::string& to, int64_t count) {
  if (from.empty()) {  // Python inserts `to` around every code point
    std::string out;
    int64_t done = 0;
    for (const auto& cp : code_points(s)) {
      if (count < 0 || done < count) {
        out += to;
        ++done;
      }
      out += cp;
    }
    if (count < 0 || done < count) out += to;
    return out;
  }
  std::string out;
  size_t pos = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    const size_t f = s.find(from, pos);
    if (f == std::string::npos) break;
    out += s.substr(pos, f - pos) + to;
    pos = f + from.size();
    ++done;
  }
  return out + s.substr(pos);
}

// Python's str.split(sep=None, maxsplit=-1).
std::vector<std::string> py_split(const std::string& s, const Value* sep, int64_t maxsplit) {
  std::vector<std::string> out;
  if (sep && sep->is_string()) {
    size_t pos = 0;
    while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
      const size_t f = s.find(sep->s, pos);
      if (f == std::string::npos) break;
      out.push_back(s.substr(pos, f - pos));
      pos = f + sep->s.size();
    }
    out.push_back(s.substr(pos));
    return out;
  }
  const std::vector<std::string> cps = code_points(s);
  auto space = [&](size_t k) {
    size_t n = 0;
    return is_py_space(decode(cps[k], 0, &n));
  };
  size_t k = 0;
  while (k < cps.size()) {
    while (k < cps.size() && space(k)) ++k;
    if (k >= cps.size()) break;
    if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
      std::string rest;
      for (; k < cps.size(); ++k) rest += cps[k];
      // Python keeps the remainder as is (its leading whitespace was skipped above).
      out.push_back(rest);
      break;
    }
    std::string word;
    while (k < cps.size() && !space(k)) word += cps[k++];
    out.push_back(word);
  }
  return out;
}

int64_t py_floordiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}
int64_t py_mod(int64_t a, int64_t b) {
  int64_t m = a % b;
  if (m != 0 && ((m < 0) != (b < 0))) m += b;
  return m;
}

double as_double(const Value& v) {
  if (v.kind == K::kFloat) return v.f;
  if (v.kind == K::kBool) return v.b ? 1 : 0;
  return static_cast<double>(v.i);
}
int64_t as_int(const Value& v) { return v.kind == K::kBool ? v.b : v.i; }

constexpr size_t kMaxOutput = size_t{256} << 20;  // a template that writes more is runaway
constexpr int64_t kMaxRange = 100000;              // jinja2.sandbox.MAX_RANGE

enum class Flow { kNormal, kBreak, kContinue };

struct Args {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
  const Value* get(size_t k, const char* name) const {
    if (k < pos.size()) return &pos[k];
    for (const auto& [n, v] : kw) {
      if (n == name) return &v;
    }
    return nullptr;
  }
};

class Renderer {
 public:
  explicit Renderer(const std::map<std::string, Value>& globals) { frames_.push_back(globals); frames_.emplace_back(); }

  Result<std::string> run(const Body& body) {
    std::string out;
    HANUL_ASSIGN_OR_RETURN(Flow f, exec(body, out));
    (void)f;
    return out;
  }

 private:
  static Error err(int line, const std::string& what) {
    return Error{fmt::format("chat template line {}: {}", line, what)};
  }

  // The message Jinja gives when an Undefined is used where a value is needed.
  static std::string undefined_message(const Value& v) {
    return v.s.empty() ? "a value is undefined" : v.s;
  }

  Value lookup(const std::string& name) const {
    for (auto f = frames_.rbegin(); f != frames_.rend(); ++f) {
      auto it = f->find(name);
      if (it != f->end()) return it->second;
    }
    return Value::undefined(fmt::format("'{}' is undefined", name));
  }

  Result<Flow> exec(const Body& body, std::string& out) {
    for (const Node& n : body) {
      HANUL_ASSIGN_OR_RETURN(Flow f, exec_node(n, out));
      if (f != Flow::kNormal) return f;
      if (out.size() > kMaxOutput) return err(n.line, "the template output passed 256 MiB; stopped");
    }
    return Flow::kNormal;
  }

  Result<Flow> exec_node(const Node& n, std::string& out) {
    switch (n.kind) {
      case Node::Kind::kText: out += n.text; return Flow::kNormal;
      case Node::Kind::kOutput: {
        HANUL_ASSIGN_OR_RETURN(Value v, eval(*n.expr));
        out += to_display(v);
        return Flow::kNormal;
      }
      case Node::Kind::kIf:
        for (const auto& [cond, body] : n.branches) {
          HANUL_ASSIGN_OR_RETURN(Value c, eval(*cond));
          if (c.truthy()) return exec(body, out);
        }
        return exec(n.else_body, out);
      case Node::Kind::kFor: return exec_for(n, out);
      case Node::Kind::kSet: {
        HANUL_ASSIGN_OR_RETURN(Value v, eval(*n.expr));
        if (!n.attr.empty()) {
          Value ns = lookup(n.targets[0]);
          if (ns.kind != K::kNamespace) {
            return err(n.line, fmt::format("cannot assign attribute '{}' on '{}', which is a {} and not a namespace()",
                                           n.attr, n.targets[0], type_name(ns)));
          }
          for (auto& [k, val] : *ns.dict) {
            if (k == n.attr) {
              val = std::move(v);
              return Flow::kNormal;
            }
          }
          ns.dict->emplace_back(n.attr, std::move(v));
          return Flow::kNormal;
        }
        HANUL_TRY(assign(n.targets, std::move(v), n.line));
        return Flow::kNormal;
      }
      case Node::Kind::kSetBlock: {
        std::string inner;
        HANUL_ASSIGN_OR_RETURN(Flow f, exec(n.body, inner));
        (void)f;
        frames_.back()[n.targets[0]] = Value::string(std::move(inner));
        return Flow::kNormal;
      }
      case Node::Kind::kBreak: return Flow::kBreak;
      case Node::Kind::kContinue: return Flow::kContinue;
      case Node::Kind::kGeneration: return exec(n.body, out);
    }
    return Flow::kNormal;
  }

  Status assign(const std::vector<std::string>& targets, Value v, int line) {
    if (targets.size() == 1) {
      frames_.back()[targets[0]] = std::move(v);
      return Status::Ok();
    }
    if (!v.is_list() || v.list->size() != targets.size()) {
      return err(line, fmt::format("cannot unpack a {} into {} names", type_name(v), targets.size()));
    }
    for (size_t k = 0; k < targets.size(); ++k) frames_.back()[targets[k]] = (*v.list)[k];
    return Status::Ok();
  }

  Result<List> iterate(const Value& v, int line) {
    switch (v.kind) {
      case K::kUndefined: return List{};  // Undefined iterates as empty
      case K::kList: return *v.list;
      case K::kDict: {
        List keys;
        for (const auto& kv : *v.dict) keys.push_back(Value::string(kv.first));
        return keys;
      }
      case K::kString: {
        List chars;
        for (auto& cp : code_points(v.s)) chars.push_back(Value::string(cp));
        return chars;
      }
      default: return err(line, fmt::format("'{}' object is not iterable", type_name(v)));
    }
  }

  Result<Flow> exec_for(const Node& n, std::string& out) {
    HANUL_ASSIGN_OR_RETURN(Value seq, eval(*n.expr));
    HANUL_ASSIGN_OR_RETURN(List items, iterate(seq, n.line));
    if (n.filter) {  // `for x in xs if cond`: filtered before loop.length is known
      List kept;
      for (auto& item : items) {
        frames_.emplace_back();
        Status s = assign(n.targets, item, n.line);
        Result<Value> c = s.ok() ? eval(*n.filter) : Result<Value>(s.error());
        frames_.pop_back();
        if (!c.ok()) return c.error();
        if (c->truthy()) kept.push_back(item);
      }
      items = std::move(kept);
    }
    if (items.empty()) return exec(n.else_body, out);
    const auto len = static_cast<int64_t>(items.size());
    for (int64_t k = 0; k < len; ++k) {
      frames_.emplace_back();  // each iteration is its own scope, as in Jinja
      Dict loop = {{"index", Value::integer(k + 1)},
                   {"index0", Value::integer(k)},
                   {"revindex", Value::integer(len - k)},
                   {"revindex0", Value::integer(len - k - 1)},
                   {"first", Value::boolean(k == 0)},
                   {"last", Value::boolean(k == len - 1)},
                   {"length", Value::integer(len)},
                   {"depth", Value::integer(loop_depth_ + 1)},
                   {"depth0", Value::integer(loop_depth_)}};
      if (k > 0) loop.emplace_back("previtem", items[k - 1]);
      if (k + 1 < len) loop.emplace_back("nextitem", items[k + 1]);
      frames_.back()["loop"] = Value::make_dict(std::move(loop));
      Status s = assign(n.targets, items[k], n.line);
      if (!s.ok()) {
        frames_.pop_back();
        return s.error();
      }
      ++loop_depth_;
      Result<Flow> f = exec(n.body, out);
      --loop_depth_;
      frames_.pop_back();
      if (!f.ok()) return f.error();
      if (*f == Flow::kBreak) break;
    }
    return Flow::kNormal;
  }

  // ---- expressions --------------------------------------------------------

  Result<Value> eval(const Expr& e) {
    switch (e.kind) {
      case Expr::Kind::kLiteral: return e.value;
      case Expr::Kind::kName: return lookup(e.name);
      case Expr::Kind::kList: {
        List items;
        for (const auto& a : e.args) {
          HANUL_ASSIGN_OR_RETURN(Value v, eval(*a));
          items.push_back(std::move(v));
        }
        return Value::make_list(std::move(items));
      }
      case Expr::Kind::kDict: {
        Dict d;
        for (const auto& [k, a] : e.kwargs) {
          HANUL_ASSIGN_OR_RETURN(Value v, eval(*a));
          auto it = std::find_if(d.begin(), d.end(), [&](const auto& kv) { return kv.first == k; });
          if (it != d.end()) it->second = std::move(v);
          else d.emplace_back(k, std::move(v));
        }
        return Value::make_dict(std::move(d));
      }
      case Expr::Kind::kGetAttr: {
        HANUL_ASSIGN_OR_RETURN(Value obj, eval(*e.args[0]));
        return get_attr(obj, e.name, e.line);
      }
      case Expr::Kind::kGetItem: {
        HANUL_ASSIGN_OR_RETURN(Value obj, eval(*e.args[0]));
        HANUL_ASSIGN_OR_RETURN(Value key, eval(*e.args[1]));
        return get_item(obj, key, e.line);
      }
      case Expr::Kind::kSlice: return eval_slice(e);
      case Expr::Kind::kCall: return eval_call(e);
      case Expr::Kind::kFilter: {
        HANUL_ASSIGN_OR_RETURN(Value v, eval(*e.args[0]));
        HANUL_ASSIGN_OR_RETURN(Args a, eval_args(e));
        return apply_filter(e.name, v, a, e.line);
      }
      case Expr::Kind::kTest: {
        HANUL_ASSIGN_OR_RETURN(Value v, eval(*e.args[0]));
        HANUL_ASSIGN_OR_RETURN(Args a, eval_args(e));
        HANUL_ASSIGN_OR_RETURN(bool r, apply_test(e.name, v, a, e.line));
        return Value::boolean(r != e.negated);
      }
      case Expr::Kind::kNeg: {
        HANUL_ASSIGN_OR_RETURN(Value v, eval(*e.args[0]));
        if (v.kind == K::kInt || v.kind == K::kBool) return Value::integer(-as_int(v));
        if (v.kind == K::kFloat) return Value::number(-v.f);
        if (v.is_undefined()) return err(e.line, undefined_message(v));
        return err(e.line, fmt::format("bad operand type for unary -: '{}'", type_name(v)));
      }
      case Expr::Kind::kNot: {
        HANUL_ASSIGN_OR_RETURN(Value v, eval(*e.args[0]));
        return Value::boolean(!v.truthy());
      }
      case Expr::Kind::kBinary: return eval_binary(e);
      case Expr::Kind::kCompare: return eval_compare(e);
      case Expr::Kind::kCond: {
        HANUL_ASSIGN_OR_RETURN(Value c, eval(*e.args[0]));
        if (c.truthy()) return eval(*e.args[1]);
        if (!e.args[2]) return Value::undefined("the conditional expression had no else branch");
        return eval(*e.args[2]);
      }
    }
    return Value::undefined();
  }

  Result<Args> eval_args(const Expr& e) {
    Args a;
    for (size_t k = 1; k < e.args.size(); ++k) {
      HANUL_ASSIGN_OR_RETURN(Value v, eval(*e.args[k]));
      a.pos.push_back(std::move(v));
    }
    for (const auto& [n, x] : e.kwargs) {
      HANUL_ASSIGN_OR_RETURN(Value v, eval(*x));
      a.kw.emplace_back(n, std::move(v));
    }
    return a;
  }

  static std::string object_name(const Value& v) { return type_name(v) + " object"; }

  Result<Value> get_attr(const Value& obj, const std::string& name, int line) {
    if (obj.is_undefined()) return err(line, undefined_message(obj));
    if (obj.is_mapping()) {
      if (const Value* v = obj.find(name)) return *v;
    }
    return Value::undefined(fmt::format("'{}' has no attribute '{}'", object_name(obj), name));
  }

  Result<Value> get_item(const Value& obj, const Value& key, int line) {
    if (obj.is_undefined()) return err(line, undefined_message(obj));
    if (obj.is_list() && (key.kind == K::kInt || key.kind == K::kBool)) {
      int64_t k = as_int(key);
      const auto n = static_cast<int64_t>(obj.list->size());
      if (k < 0) k += n;
      if (k >= 0 && k < n) return (*obj.list)[k];
      return Value::undefined(fmt::format("'{}' has no element {}", object_name(obj), as_int(key)));
    }
    if (obj.is_string() && (key.kind == K::kInt || key.kind == K::kBool)) {
      const std::vector<std::string> cps = code_points(obj.s);
      int64_t k = as_int(key);
      const auto n = static_cast<int64_t>(cps.size());
      if (k < 0) k += n;
      if (k >= 0 && k < n) return Value::string(cps[k]);
      return Value::undefined(fmt::format("'str object' has no element {}", as_int(key)));
    }
    if (obj.is_mapping() && key.is_string()) {
      if (const Value* v = obj.find(key.s)) return *v;
      return Value::undefined(fmt::format("'{}' has no attribute '{}'", object_name(obj), key.s));
    }
    return Value::undefined(fmt::format("'{}' has no element {}", object_name(obj), to_repr(key)));
  }

  Result<Value> eval_slice(const Expr& e) {
    HANUL_ASSIGN_OR_RETURN(Value obj, eval(*e.args[0]));
    int64_t bounds[3] = {0, 0, 1};
    bool given[3] = {false, false, false};
    for (int k = 0; k < 3; ++k) {
      if (!e.args[k + 1]) continue;
      HANUL_ASSIGN_OR_RETURN(Value v, eval(*e.args[k + 1]));
      if (v.is_none()) continue;
      if (v.kind != K::kInt && v.kind != K::kBool) {
        return err(e.line, fmt::format("slice indices must be integers, not {}", type_name(v)));
      }
      bounds[k] = as_int(v);
      given[k] = true;
    }
    if (obj.is_undefined()) return err(e.line, undefined_message(obj));
    List items;
    std::vector<std::string> cps;
    int64_t n = 0;
    if (obj.is_list()) {
      n = static_cast<int64_t>(obj.list->size());
    } else if (obj.is_string()) {
      cps = code_points(obj.s);
      n = static_cast<int64_t>(cps.size());
    } else {
      return err(e.line, fmt::format("'{}' cannot be sliced", type_name(obj)));
    }
    const int64_t step = bounds[2];
    if (step == 0) return err(e.line, "slice step cannot be zero");
    // Python's slice.indices().
    auto clamp = [&](int64_t v, bool is_given, int64_t dflt) {
      if (!is_given) return dflt;
      if (v < 0) v += n;
      if (step > 0) return std::clamp<int64_t>(v, 0, n);
      return std::clamp<int64_t>(v, -1, n - 1);
    };
    const int64_t start = clamp(bounds[0], given[0], step > 0 ? 0 : n - 1);
    const int64_t stop = clamp(bounds[1], given[1], step > 0 ? n : -1);
    std::vector<int64_t> idx;
    for (int64_t k = start; step > 0 ? k < stop : k > stop; k += step) idx.push_back(k);
    if (obj.is_list()) {
      for (int64_t k : idx) items.push_back((*obj.list)[k]);
      return Value::make_list(std::move(items));
    }
    std::string s;
    for (int64_t k : idx) s += cps[k];
    return Value::string(std::move(s));
  }

  Result<Value> eval_binary(const Expr& e) {
    HANUL_ASSIGN_OR_RETURN(Value a, eval(*e.args[0]));
    const std::string& op = e.name;
    if (op == "and") return a.truthy() ? eval(*e.args[1]) : a;
    if (op == "or") return a.truthy() ? a : eval(*e.args[1]);
    HANUL_ASSIGN_OR_RETURN(Value b, eval(*e.args[1]));
    if (op == "~") return Value::string(to_display(a) + to_display(b));
    if (a.is_undefined()) return err(e.line, undefined_message(a));
    if (b.is_undefined()) return err(e.line, undefined_message(b));
    auto unsupported = [&]() {
      return err(e.line, fmt::format("unsupported operand type(s) for {}: '{}' and '{}'", op, type_name(a),
                                     type_name(b)));
    };
    const bool ints = (a.kind == K::kInt || a.kind == K::kBool) && (b.kind == K::kInt || b.kind == K::kBool);
    const bool nums = a.is_number() && b.is_number();
    if (op == "+") {
      if (a.is_string() && b.is_string()) return Value::string(a.s + b.s);
      if (a.is_list() && b.is_list()) {
        List items = *a.list;
        items.insert(items.end(), b.list->begin(), b.list->end());
        return Value::make_list(std::move(items));
      }
      if (ints) return Value::integer(as_int(a) + as_int(b));
      if (nums) return Value::number(as_double(a) + as_double(b));
      return unsupported();
    }
    if (op == "-") {
      if (ints) return Value::integer(as_int(a) - as_int(b));
      if (nums) return Value::number(as_double(a) - as_double(b));
      return unsupported();
    }
    if (op == "*") {
      if (ints) return Value::integer(as_int(a) * as_int(b));
      if (nums) return Value::number(as_double(a) * as_double(b));
      const Value* seq = a.is_string() || a.is_list() ? &a : b.is_string() || b.is_list() ? &b : nullptr;
      const Value* times = seq == &a ? &b : &a;
      if (seq && (times->kind == K::kInt || times->kind == K::kBool)) {
        const int64_t t = as_int(*times);
        if (t > 0 && static_cast<double>(t) * (seq->is_string() ? seq->s.size() : seq->list->size()) > 1e8) {
          return err(e.line, "repetition result too large");
        }
        if (seq->is_string()) {
          std::string s;
          for (int64_t k = 0; k < t; ++k) s += seq->s;
          return Value::string(std::move(s));
        }
        List items;
        for (int64_t k = 0; k < t; ++k) items.insert(items.end(), seq->list->begin(), seq->list->end());
        return Value::make_list(std::move(items));
      }
      return unsupported();
    }
    if (op == "/" || op == "//" || op == "%") {
      if (!nums) return unsupported();
      if (as_double(b) == 0) return err(e.line, "division by zero");
      if (op == "/") return Value::number(as_double(a) / as_double(b));
      if (ints) return Value::integer(op == "//" ? py_floordiv(as_int(a), as_int(b)) : py_mod(as_int(a), as_int(b)));
      const double x = as_double(a), y = as_double(b);
      if (op == "//") return Value::number(std::floor(x / y));
      double m = std::fmod(x, y);
      if (m != 0 && ((m < 0) != (y < 0))) m += y;
      return Value::number(m);
    }
    if (op == "**") {
      if (ints && as_int(b) >= 0) {
        int64_t r = 1;
        for (int64_t k = 0; k < as_int(b); ++k) {
          if (std::abs(static_cast<double>(r) * as_int(a)) > 9e18) return err(e.line, "integer power too large");
          r *= as_int(a);
        }
        return Value::integer(r);
      }
      if (nums) return Value::number(std::pow(as_double(a), as_double(b)));
      return unsupported();
    }
    return err(e.line, fmt::format("unsupported operator '{}'", op));
  }

  Result<bool> contains(const Value& container, const Value& item, int line) {
    switch (container.kind) {
      case K::kUndefined: return false;
      case K::kString:
        if (!item.is_string()) {
          return err(line, fmt::format("'in <string>' requires string as left operand, not {}", type_name(item)));
        }
        return container.s.find(item.s) != std::string::npos;
      case K::kList:
        return std::any_of(container.list->begin(), container.list->end(),
                           [&](const Value& v) { return equals(v, item); });
      case K::kDict: return item.is_string() && container.find(item.s) != nullptr;
      default: return err(line, fmt::format("argument of type '{}' is not iterable", type_name(container)));
    }
  }

  Result<bool> compare(const std::string& op, const Value& a, const Value& b, int line) {
    if (op == "==") return equals(a, b);
    if (op == "!=") return !equals(a, b);
    if (op == "in") return contains(b, a, line);
    if (op == "notin") {
      HANUL_ASSIGN_OR_RETURN(bool r, contains(b, a, line));
      return !r;
    }
    if (a.is_undefined()) return err(line, undefined_message(a));
    if (b.is_undefined()) return err(line, undefined_message(b));
    Result<bool> r = op == "<" ? less(a, b) : op == ">" ? less(b, a) : op == "<=" ? less(b, a) : less(a, b);
    if (!r.ok()) return err(line, r.message());
    if (op == "<=" || op == ">=") return !*r;
    return *r;
  }

  Result<Value> eval_compare(const Expr& e) {
    HANUL_ASSIGN_OR_RETURN(Value left, eval(*e.args[0]));
    for (size_t k = 0; k < e.ops.size(); ++k) {
      HANUL_ASSIGN_OR_RETURN(Value right, eval(*e.args[k + 1]));
      HANUL_ASSIGN_OR_RETURN(bool r, compare(e.ops[k], left, right, e.line));
      if (!r) return Value::boolean(false);
      left = std::move(right);
    }
    return Value::boolean(true);
  }

  // ---- calls: globals and methods ----------------------------------------

  Result<Value> eval_call(const Expr& e) {
    const Expr& callee = *e.args[0];
    HANUL_ASSIGN_OR_RETURN(Args a, eval_args(e));
    if (callee.kind == Expr::Kind::kGetAttr) {
      HANUL_ASSIGN_OR_RETURN(Value obj, eval(*callee.args[0]));
      return call_method(obj, callee.name, a, e.line);
    }
    if (callee.kind != Expr::Kind::kName) return err(e.line, "only named functions and methods can be called");
    const std::string& fn = callee.name;
    if (fn == "raise_exception") {
      // transformers: raise jinja2.exceptions.TemplateError(message); the message alone is the error.
      const Value* msg = a.get(0, "message");
      return Error{msg ? to_display(*msg) : std::string("raise_exception() called")};
    }
    if (fn == "namespace" || fn == "dict") {
      Dict d;
      for (const Value& p : a.pos) {  // namespace({'a': 1}) copies a dict
        if (!p.is_mapping()) return err(e.line, fmt::format("{}() takes keyword arguments or a dict", fn));
        for (const auto& kv : *p.dict) d.push_back(kv);
      }
      for (auto& kv : a.kw) d.push_back(kv);
      return fn == "dict" ? Value::make_dict(std::move(d)) : Value::make_namespace(std::move(d));
    }
    if (fn == "range") {
      int64_t r[3] = {0, 0, 1};
      for (const Value& p : a.pos) {
        if (p.kind != K::kInt && p.kind != K::kBool) return err(e.line, "range() takes integers");
      }
      if (a.pos.size() == 1) r[1] = as_int(a.pos[0]);
      else if (a.pos.size() == 2 || a.pos.size() == 3) {
        for (size_t k = 0; k < a.pos.size(); ++k) r[k] = as_int(a.pos[k]);
      } else {
        return err(e.line, "range() takes 1 to 3 integers");
      }
      if (r[2] == 0) return err(e.line, "range() step must not be zero");
      List items;
      for (int64_t k = r[0]; r[2] > 0 ? k < r[1] : k > r[1]; k += r[2]) {
        if (static_cast<int64_t>(items.size()) >= kMaxRange) {
          return err(e.line, fmt::format("range() is limited to {} items in the sandbox", kMaxRange));
        }
        items.push_back(Value::integer(k));
      }
      return Value::make_list(std::move(items));
    }
    if (fn == "strftime_now") {
      const Value* f = a.get(0, "format");
      if (!f || !f->is_string()) return err(e.line, "strftime_now() takes a format string");
      const std::time_t now = std::time(nullptr);
      std::tm tm{};
      localtime_r(&now, &tm);
      char buf[512];
      const size_t n = std::strftime(buf, sizeof buf, f->s.c_str(), &tm);
      return Value::string(std::string(buf, n));
    }
    Value v = lookup(fn);
    if (v.is_undefined()) return err(e.line, fmt::format("unsupported function '{}()'", fn));
    return err(e.line, fmt::format("'{}' is a {}, not a function", fn, type_name(v)));
  }

  Result<Value> call_method(const Value& obj, const std::string& m, const Args& a, int line) {
    if (obj.is_undefined()) return err(line, undefined_message(obj));
    if (obj.is_string()) {
      const std::string& s = obj.s;
      if (m == "strip" || m == "lstrip" || m == "rstrip") {
        const Value* chars = a.get(0, "chars");
        if (chars && chars->is_none()) chars = nullptr;
        return Value::string(strip(s, m != "rstrip", m != "lstrip", chars));
      }
      if (m == "startswith" || m == "endswith") {
        const Value* p = a.get(0, "prefix");
        if (!p) return err(line, fmt::format("{}() takes a string", m));
        List options = p->is_list() ? *p->list : List{*p};
        for (const Value& o : options) {
          if (!o.is_string()) return err(line, fmt::format("{}() takes strings, not {}", m, type_name(o)));
          const bool hit = m == "startswith" ? s.compare(0, o.s.size(), o.s) == 0 && s.size() >= o.s.size()
                                             : s.size() >= o.s.size() &&
                                                   s.compare(s.size() - o.s.size(), o.s.size(), o.s) == 0;
          if (hit) return Value::boolean(true);
        }
        return Value::boolean(false);
      }
      if (m == "split") {
        const Value* sep = a.get(0, "sep");
        if (sep && sep->is_none()) sep = nullptr;
        if (sep && (!sep->is_string() || sep->s.empty())) return err(line, "split() separator must be a non-empty string");
        const Value* maxs = a.get(1, "maxsplit");
        List parts;
        for (auto& p : py_split(s, sep, maxs ? as_int(*maxs) : -1)) parts.push_back(Value::string(std::move(p)));
        return Value::make_list(std::move(parts));
      }
      if (m == "upper") return Value::string(ascii_upper(s));
      if (m == "lower") return Value::string(ascii_lower(s));
      if (m == "title") return Value::string(py_title(s));
      if (m == "capitalize") return Value::string(capitalize(s));
      if (m == "replace") {
        const Value* from = a.get(0, "old");
        const Value* to = a.get(1, "new");
        const Value* count = a.get(2, "count");
        if (!from || !to || !from->is_string() || !to->is_string()) return err(line, "replace() takes two strings");
        return Value::string(py_replace(s, from->s, to->s, count ? as_int(*count) : -1));
      }
      if (m == "join") {
        const Value* items = a.get(0, "iterable");
        if (!items) return err(line, "join() takes a list");
        HANUL_ASSIGN_OR_RETURN(List list, iterate(*items, line));
        std::string out;
        for (size_t k = 0; k < list.size(); ++k) {
          if (!list[k].is_string()) return err(line, fmt::format("join() expects strings, found {}", type_name(list[k])));
          out += (k ? s : "") + list[k].s;
        }
        return Value::string(std::move(out));
      }
    } else if (obj.kind == K::kDict) {
      if (m == "items" || m == "keys" || m == "values") {
        List out;
        for (const auto& [k, v] : *obj.dict) {
          if (m == "items") out.push_back(Value::make_list({Value::string(k), v}));
          else if (m == "keys") out.push_back(Value::string(k));
          else out.push_back(v);
        }
        return Value::make_list(std::move(out));
      }
      if (m == "get") {
        const Value* key = a.get(0, "key");
        const Value* dflt = a.get(1, "default");
        if (!key) return err(line, "get() takes a key");
        if (key->is_string()) {
          if (const Value* v = obj.find(key->s)) return *v;
        }
        return dflt ? *dflt : Value::none();
      }
    }
    return err(line, fmt::format("unsupported method '{}.{}()'", type_name(obj), m));
  }

  // ---- filters and tests --------------------------------------------------

  Result<Value> apply_filter(const std::string& f, const Value& v, const Args& a, int line) {
    auto need_string = [&]() -> Result<std::string> {
      if (v.is_undefined()) return std::string();
      return to_display(v);
    };
    if (f == "trim") {
      HANUL_ASSIGN_OR_RETURN(std::string s, need_string());
      const Value* chars = a.get(0, "chars");
      if (chars && chars->is_none()) chars = nullptr;
      return Value::string(strip(s, true, true, chars));
    }
    if (f == "tojson") {
      const Value* ensure_ascii = a.get(0, "ensure_ascii");
      const Value* indent = a.get(1, "indent");
      const Value* separators = a.get(2, "separators");
      const Value* sort_keys = a.get(3, "sort_keys");
      if (ensure_ascii && ensure_ascii->truthy()) return err(line, "tojson(ensure_ascii=true) is not supported");
      if (separators && !separators->is_none()) return err(line, "tojson(separators=...) is not supported");
      int ind = -1;
      if (indent && !indent->is_none()) {
        if (indent->kind != K::kInt) return err(line, "tojson(indent=...) takes an integer");
        ind = static_cast<int>(std::clamp<int64_t>(indent->i, 0, 64));
      }
      Result<std::string> j = to_json(v, ind, sort_keys && sort_keys->truthy());
      if (!j.ok()) return err(line, j.message());
      return Value::string(std::move(*j));
    }
    if (f == "length" || f == "count") {
      switch (v.kind) {
        case K::kUndefined: return Value::integer(0);
        case K::kString: return Value::integer(static_cast<int64_t>(code_points(v.s).size()));
        case K::kList: return Value::integer(static_cast<int64_t>(v.list->size()));
        case K::kDict: return Value::integer(static_cast<int64_t>(v.dict->size()));
        default: return err(line, fmt::format("object of type '{}' has no len()", type_name(v)));
      }
    }
    if (f == "upper" || f == "lower" || f == "capitalize" || f == "title") {
      HANUL_ASSIGN_OR_RETURN(std::string s, need_string());
      if (f == "upper") return Value::string(ascii_upper(s));
      if (f == "lower") return Value::string(ascii_lower(s));
      if (f == "capitalize") return Value::string(capitalize(s));
      return Value::string(jinja_title(s));
    }
    if (f == "first" || f == "last") {
      HANUL_ASSIGN_OR_RETURN(List items, iterate(v, line));
      if (items.empty()) return Value::undefined("no first/last item of an empty sequence");
      return f == "first" ? items.front() : items.back();
    }
    if (f == "join") {
      const Value* sep = a.get(0, "d");
      const Value* attr = a.get(1, "attribute");
      HANUL_ASSIGN_OR_RETURN(List items, iterate(v, line));
      std::string out;
      for (size_t k = 0; k < items.size(); ++k) {
        Value item = items[k];
        if (attr) {
          HANUL_ASSIGN_OR_RETURN(item, get_item(item, *attr, line));
        }
        out += (k && sep ? to_display(*sep) : "") + to_display(item);
      }
      return Value::string(std::move(out));
    }
    if (f == "default" || f == "d") {
      const Value* dflt = a.get(0, "default_value");
      const Value* boolean = a.get(1, "boolean");
      const bool use = v.is_undefined() || (boolean && boolean->truthy() && !v.truthy());
      if (use) return dflt ? *dflt : Value::string("");
      return v;
    }
    if (f == "items") {
      if (v.is_undefined()) return Value::make_list();
      if (v.kind != K::kDict) return err(line, fmt::format("items filter expects a mapping, got {}", type_name(v)));
      return call_method(v, "items", {}, line);
    }
    if (f == "string") return Value::string(to_display(v));
    if (f == "safe") return v;
    if (f == "replace") {
      HANUL_ASSIGN_OR_RETURN(std::string s, need_string());
      const Value* from = a.get(0, "old");
      const Value* to = a.get(1, "new");
      const Value* count = a.get(2, "count");
      if (!from || !to) return err(line, "replace takes two strings");
      return Value::string(py_replace(s, to_display(*from), to_display(*to),
                                      count && !count->is_none() ? as_int(*count) : -1));
    }
    if (f == "list") {
      HANUL_ASSIGN_OR_RETURN(List items, iterate(v, line));
      return Value::make_list(std::move(items));
    }
    if (f == "reverse") {
      if (v.is_string()) {
        std::vector<std::string> cps = code_points(v.s);
        std::string out;
        for (auto it = cps.rbegin(); it != cps.rend(); ++it) out += *it;
        return Value::string(std::move(out));
      }
      HANUL_ASSIGN_OR_RETURN(List items, iterate(v, line));
      std::reverse(items.begin(), items.end());
      return Value::make_list(std::move(items));
    }
    if (f == "unique") {
      HANUL_ASSIGN_OR_RETURN(List items, iterate(v, line));
      List out;
      for (auto& x : items) {
        if (std::none_of(out.begin(), out.end(), [&](const Value& y) { return equals(x, y); })) out.push_back(x);
      }
      return Value::make_list(std::move(out));
    }
    if (f == "sort" || f == "dictsort") {
      List items;
      if (f == "dictsort") {
        if (v.kind != K::kDict) return err(line, "dictsort expects a mapping");
        for (const auto& [k, x] : *v.dict) items.push_back(Value::make_list({Value::string(k), x}));
      } else {
        HANUL_ASSIGN_OR_RETURN(items, iterate(v, line));
      }
      const Value* rev = a.get(f == "sort" ? 0 : 2, "reverse");
      const Value* attr = f == "sort" ? a.get(2, "attribute") : nullptr;
      auto key = [&](const Value& x) -> Value {
        Value k = x;
        if (f == "dictsort") k = (*x.list)[0];
        if (attr) {
          Result<Value> r = get_item(x, *attr, line);
          k = r.ok() ? *r : Value::undefined();
        }
        if (k.is_string()) k.s = ascii_lower(k.s);  // case_sensitive=False, Jinja's default
        return k;
      };
      Status failure;
      std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
        Result<bool> r = less(key(x), key(y));
        if (!r.ok()) {
          failure = err(line, r.message());
          return false;
        }
        return *r;
      });
      if (!failure.ok()) return failure.error();
      if (rev && rev->truthy()) std::reverse(items.begin(), items.end());
      return Value::make_list(std::move(items));
    }
    if (f == "selectattr" || f == "rejectattr" || f == "select" || f == "reject") {
      const bool by_attr = f == "selectattr" || f == "rejectattr";
      const bool keep_if = f == "selectattr" || f == "select";
      HANUL_ASSIGN_OR_RETURN(List items, iterate(v, line));
      size_t k0 = 0;
      Value attr;
      if (by_attr) {
        if (a.pos.empty()) return err(line, fmt::format("{} needs an attribute name", f));
        attr = a.pos[0];
        k0 = 1;
      }
      std::string test;
      Args targs;
      if (a.pos.size() > k0) {
        if (!a.pos[k0].is_string()) return err(line, fmt::format("{} takes a test name", f));
        test = a.pos[k0].s;
        if (!is_known_test(test)) return err(line, fmt::format("unsupported test '{}'", test));
        targs.pos.assign(a.pos.begin() + static_cast<long>(k0) + 1, a.pos.end());
      }
      List out;
      for (const Value& item : items) {
        Value subject = item;
        if (by_attr) {
          HANUL_ASSIGN_OR_RETURN(subject, attr.is_string() ? get_attr(item, attr.s, line) : get_item(item, attr, line));
        }
        bool pass = subject.truthy();
        if (!test.empty()) {
          HANUL_ASSIGN_OR_RETURN(pass, apply_test(test, subject, targs, line));
        }
        if (pass == keep_if) out.push_back(item);
      }
      return Value::make_list(std::move(out));
    }
    if (f == "map") {
      HANUL_ASSIGN_OR_RETURN(List items, iterate(v, line));
      const Value* attr = nullptr;
      const Value* dflt = nullptr;
      for (const auto& [n, x] : a.kw) {
        if (n == "attribute") attr = &x;
        if (n == "default") dflt = &x;
      }
      List out;
      for (const Value& item : items) {
        if (attr) {
          HANUL_ASSIGN_OR_RETURN(Value x, attr->is_string() ? get_attr(item, attr->s, line) : get_item(item, *attr, line));
          if (x.is_undefined() && dflt) x = *dflt;
          out.push_back(std::move(x));
        } else {
          if (a.pos.empty() || !a.pos[0].is_string()) return err(line, "map takes a filter name or attribute=");
          const std::string name = a.pos[0].s;
          if (!is_known_filter(name)) return err(line, fmt::format("unsupported filter '{}'", name));
          Args rest;
          rest.pos.assign(a.pos.begin() + 1, a.pos.end());
          HANUL_ASSIGN_OR_RETURN(Value x, apply_filter(name, item, rest, line));
          out.push_back(std::move(x));
        }
      }
      return Value::make_list(std::move(out));
    }
    if (f == "int" || f == "float") {
      const Value* dflt = a.get(0, "default");
      const bool to_int = f == "int";
      Value fallback = dflt ? *dflt : (to_int ? Value::integer(0) : Value::number(0));
      if (v.kind == K::kInt || v.kind == K::kBool) return to_int ? Value::integer(as_int(v)) : Value::number(as_double(v));
      if (v.kind == K::kFloat) return to_int ? Value::integer(static_cast<int64_t>(v.f)) : v;
      if (v.is_string()) {
        const std::string s = strip(v.s, true, true, nullptr);
        char* end = nullptr;
        if (to_int) {
          const long long x = std::strtoll(s.c_str(), &end, 10);
          if (!s.empty() && end && *end == '\0') return Value::integer(x);
        }
        const double d = std::strtod(s.c_str(), &end);
        if (!s.empty() && end && *end == '\0') return to_int ? Value::integer(static_cast<int64_t>(d)) : Value::number(d);
      }
      return fallback;
    }
    if (f == "abs") {
      if (v.kind == K::kInt || v.kind == K::kBool) return Value::integer(std::abs(as_int(v)));
      if (v.kind == K::kFloat) return Value::number(std::fabs(v.f));
      return err(line, fmt::format("bad operand type for abs(): '{}'", type_name(v)));
    }
    return err(line, fmt::format("unsupported filter '{}'", f));
  }

  Result<bool> apply_test(const std::string& t, const Value& v, const Args& a, int line) {
    const Value* arg = a.get(0, "value");
    auto need_arg = [&]() -> Status {
      if (!arg) return err(line, fmt::format("test '{}' needs an argument", t));
      return Status::Ok();
    };
    if (t == "defined") return !v.is_undefined();
    if (t == "undefined") return v.is_undefined();
    if (t == "none") return v.is_none();
    if (t == "string") return v.is_string();
    if (t == "number") return v.is_number();
    if (t == "integer") return v.kind == K::kInt;
    if (t == "float") return v.kind == K::kFloat;
    if (t == "boolean") return v.kind == K::kBool;
    if (t == "true") return v.kind == K::kBool && v.b;
    if (t == "false") return v.kind == K::kBool && !v.b;
    if (t == "mapping") return v.kind == K::kDict;
    if (t == "iterable") return v.is_string() || v.is_list() || v.kind == K::kDict || v.is_undefined();
    if (t == "sequence") return v.is_string() || v.is_list() || v.kind == K::kDict;
    if (t == "lower" || t == "upper") {
      if (!v.is_string()) return false;
      return t == "lower" ? ascii_lower(v.s) == v.s && ascii_upper(v.s) != v.s
                          : ascii_upper(v.s) == v.s && ascii_lower(v.s) != v.s;
    }
    if (t == "even" || t == "odd" || t == "divisibleby") {
      if (v.kind != K::kInt && v.kind != K::kBool) {
        return err(line, fmt::format("test '{}' needs an integer, got {}", t, type_name(v)));
      }
      if (t == "even") return py_mod(as_int(v), 2) == 0;
      if (t == "odd") return py_mod(as_int(v), 2) == 1;
      HANUL_TRY(need_arg());
      if ((arg->kind != K::kInt && arg->kind != K::kBool) || as_int(*arg) == 0) {
        return err(line, "divisibleby needs a non-zero integer");
      }
      return py_mod(as_int(v), as_int(*arg)) == 0;
    }
    if (t == "sameas") {
      HANUL_TRY(need_arg());
      if (v.kind != arg->kind) return false;
      if (v.is_list()) return v.list == arg->list;
      if (v.is_mapping()) return v.dict == arg->dict;
      return equals(v, *arg);
    }
    static const std::map<std::string, std::string> kCompare = {
        {"equalto", "=="}, {"eq", "=="}, {"==", "=="}, {"ne", "!="}, {"!=", "!="}, {"lt", "<"}, {"<", "<"},
        {"gt", ">"},       {">", ">"},   {"le", "<="}, {"<=", "<="}, {"ge", ">="}, {">=", ">="}, {"in", "in"}};
    auto it = kCompare.find(t);
    if (it != kCompare.end()) {
      HANUL_TRY(need_arg());
      return compare(it->second, v, *arg, line);
    }
    return err(line, fmt::format("unsupported test '{}'", t));
  }

  std::vector<std::map<std::string, Value>> frames_;
  int64_t loop_depth_ = 0;
};

}  // namespace

Result<std::string> render(const Body& body, const std::map<std::string, Value>& globals) {
  return Renderer(globals).run(body);
}

}  // namespace hanul::jinja
