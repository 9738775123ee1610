// The values a chat template computes with: Jinja's view of Python objects
// (None, bool, int, float, str, list, dict, namespace) plus Jinja's default
// Undefined, which is falsy, prints as "" and iterates as empty, but fails
// when used in arithmetic or looked into (jinja2/runtime.py, class Undefined).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "hanul/base/result.h"

namespace hanul::jinja {

struct Value;
using List = std::vector<Value>;
// A dict keeps insertion order, as Python's does (tojson and items() show it).
using Dict = std::vector<std::pair<std::string, Value>>;

struct Value {
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kNamespace };
  Kind kind = Kind::kUndefined;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;                // the string, or for Undefined the name that was missing
  std::shared_ptr<List> list;   // kList (shared: lists are immutable in the sandbox)
  std::shared_ptr<Dict> dict;   // kDict and kNamespace (a namespace is mutable through ns.x = ...)

  static Value undefined(std::string name = {}) { Value v; v.s = std::move(name); return v; }
  static Value none() { Value v; v.kind = Kind::kNone; return v; }
  static Value boolean(bool x) { Value v; v.kind = Kind::kBool; v.b = x; return v; }
  static Value integer(int64_t x) { Value v; v.kind = Kind::kInt; v.i = x; return v; }
  static Value number(double x) { Value v; v.kind = Kind::kFloat; v.f = x; return v; }
  static Value string(std::string x) { Value v; v.kind = Kind::kString; v.s = std::move(x); return v; }
  static Value make_list(List items = {});
  static Value make_dict(Dict items = {});
  static Value make_namespace(Dict items = {});

  bool is_undefined() const { return kind == Kind::kUndefined; }
  bool is_none() const { return kind == Kind::kNone; }
  bool is_string() const { return kind == Kind::kString; }
  bool is_number() const { return kind == Kind::kInt || kind == Kind::kFloat || kind == Kind::kBool; }
  bool is_list() const { return kind == Kind::kList; }
  bool is_mapping() const { return kind == Kind::kDict || kind == Kind::kNamespace; }

  // Python's bool(x).
  bool truthy() const;
  // A dict's (or namespace's) entry, or nullptr.
  const Value* find(const std::string& key) const;
};

// Python's str(x) as Jinja prints it ({{ x }}): None -> "None", True -> "True",
// 1.0 -> "1.0", lists and dicts in repr form; Undefined -> "".
std::string to_display(const Value& v);
// Python's repr(x) (what str() of a list shows for its items).
std::string to_repr(const Value& v);
// json.dumps(x, ensure_ascii=False, indent=indent, sort_keys=sort_keys) as
// transformers' tojson filter calls it (chat_template_utils.py); indent < 0 is None.
Result<std::string> to_json(const Value& v, int indent, bool sort_keys);
// Python's ==.
bool equals(const Value& a, const Value& b);
// Python's <; an error for types that do not order (e.g. str < int).
Result<bool> less(const Value& a, const Value& b);
// The Python type name, for error messages ("str", "int", "list", ...).
std::string type_name(const Value& v);
// Python's float repr (shortest round-trip digits: 1.0, 0.1, 1e+16).
std::string float_repr(double x);

}  // namespace hanul::jinja
