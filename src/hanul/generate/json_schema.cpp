#include "hanul/generate/json_schema.h"

#include <map>
#include <set>
#include <vector>

namespace hanul {

namespace {

using nlohmann::json;

// The JSON lexicon (RFC 8259), with bounds that keep every number inside a double / int64 and
// every \u escape off the surrogate range (a lone surrogate is not valid JSON text for strict
// parsers such as nlohmann's).
const std::map<std::string, std::string>& primitive_rules() {
  static const std::map<std::string, std::string> rules = {
      {"ws", R"(" "?)"},
      {"boolean", R"("true" | "false")"},
      {"null", R"("null")"},
      {"integer", R"("-"? ("0" | [1-9] [0-9]{0,15}))"},
      {"number", R"("-"? ("0" | [1-9] [0-9]{0,15}) ("." [0-9]{1,10})? ([eE] [-+]? [0-9]{1,2})?)"},
      {"hex", R"([0-9a-fA-F])"},
      {"char",
       R"([^"\\\x00-\x1F\x7F] | "\\" (["\\/bfnrt] | "u" ([0-9a-cA-CeEfF] hex hex hex | [dD] [0-7] hex hex)))"},
      {"string", R"("\"" char* "\"")"},
      {"value", R"(object | array | string | number | boolean | null)"},
      {"object", R"("{" ws (string ":" ws value ("," ws string ":" ws value)*)? "}")"},
      {"array", R"("[" ws (value ("," ws value)*)? "]")"},
  };
  return rules;
}

// Which primitives each one uses, so only what is needed is emitted.
const std::map<std::string, std::vector<std::string>>& primitive_deps() {
  static const std::map<std::string, std::vector<std::string>> deps = {
      {"char", {"hex"}},
      {"string", {"char"}},
      {"value", {"object", "array", "string", "number", "boolean", "null"}},
      {"object", {"ws", "string", "value"}},
      {"array", {"ws", "value"}},
  };
  return deps;
}

// A GBNF literal of raw bytes (UTF-8 passes through; the grammar parser reads it).
std::string literal(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7F) {
      static const char* hexd = "0123456789ABCDEF";
      out += "\\x";
      out += hexd[c >> 4];
      out += hexd[c & 15];
    } else {
      out += char(c);
    }
  }
  return out + "\"";
}

class Converter {
 public:
  explicit Converter(const json& root) : root_(root) {}

  Result<std::string> run() {
    HANUL_ASSIGN_OR_RETURN(std::string expr, visit(root_, "root", ""));
    std::string out = "root ::= " + expr + "\n";
    for (const auto& [name, body] : rules_) out += name + " ::= " + body + "\n";
    // Primitives and what they need.
    std::vector<std::string> todo(used_.begin(), used_.end());
    std::set<std::string> done;
    while (!todo.empty()) {
      std::string p = todo.back();
      todo.pop_back();
      if (!done.insert(p).second) continue;
      auto d = primitive_deps().find(p);
      if (d != primitive_deps().end()) todo.insert(todo.end(), d->second.begin(), d->second.end());
    }
    for (const auto& p : done) out += p + " ::= " + primitive_rules().at(p) + "\n";
    return out;
  }

 private:
  Status fail(const std::string& path, const std::string& what) const {
    return Error{"json schema: at '" + (path.empty() ? std::string("/") : path) + "': " + what};
  }

  std::string use(const std::string& primitive) {
    used_.insert(primitive);
    return primitive;
  }

  std::string new_rule(const std::string& hint, const std::string& body) {
    std::string base;
    for (char c : hint) {
      bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
      base += word ? c : '-';
    }
    if (base.empty() || primitive_rules().count(base) || base == "root") base = "r-" + base;
    std::string name = base;
    for (int i = 2; rules_.count(name) || names_.count(name); ++i) {
      name = base + "-" + std::to_string(i);
    }
    names_.insert(name);
    rules_[name] = body;
    return name;
  }

  static Result<int64_t> get_count(const json& s, const char* key, const std::string& path) {
    if (!s.contains(key)) return int64_t(-1);
    const json& v = s[key];
    if (!v.is_number_integer() || v.get<int64_t>() < 0) {
      return Error{"json schema: at '" + path + "': " + key + " must be a non-negative integer"};
    }
    if (v.get<int64_t>() > 10000) {
      return Error{"json schema: at '" + path + "': " + key + " above 10000 is not supported"};
    }
    return v.get<int64_t>();
  }

  Result<std::string> resolve_ref(const std::string& ref, const std::string& path) {
    auto it = ref_rules_.find(ref);
    if (it != ref_rules_.end()) return it->second;
    if (ref.rfind("#/", 0) != 0) {
      return Error{fail(path, "$ref '" + ref + "' is not local (only #/$defs/... and "
                              "#/definitions/... are supported)").message()};
    }
    json::json_pointer ptr;
    try {
      ptr = json::json_pointer(ref.substr(1));
    } catch (const json::exception&) {
      return Error{fail(path, "$ref '" + ref + "' is not a valid JSON pointer").message()};
    }
    if (!root_.contains(ptr)) {
      return Error{fail(path, "$ref '" + ref + "' points at nothing in the schema").message()};
    }
    // Name the rule before visiting, so a recursive reference finds it.
    std::string name = new_rule("ref" + ref.substr(1), "");
    ref_rules_[ref] = name;
    HANUL_ASSIGN_OR_RETURN(std::string body, visit(root_.at(ptr), name, ref.substr(1)));
    rules_[name] = body;
    return name;
  }

  Result<std::string> visit(const json& s, const std::string& hint, const std::string& path) {
    if (s.is_boolean()) {
      if (!s.get<bool>()) return Error{fail(path, "schema 'false' matches nothing").message()};
      return use("value");
    }
    if (!s.is_object()) return Error{fail(path, "a schema must be an object or a boolean").message()};
    if (s.contains("$ref")) {
      if (!s["$ref"].is_string()) return Error{fail(path, "$ref must be a string").message()};
      return resolve_ref(s["$ref"].get<std::string>(), path);
    }
    if (s.contains("const")) return literal(s["const"].dump());
    if (s.contains("enum")) {
      const json& e = s["enum"];
      if (!e.is_array() || e.empty()) return Error{fail(path, "enum must be a non-empty array").message()};
      std::string body;
      for (const auto& v : e) body += (body.empty() ? "" : " | ") + literal(v.dump());
      return "(" + body + ")";
    }
    for (const char* key : {"anyOf", "oneOf"}) {
      if (!s.contains(key)) continue;
      const json& alts = s[key];
      if (!alts.is_array() || alts.empty()) {
        return Error{fail(path, std::string(key) + " must be a non-empty array").message()};
      }
      std::string body;
      for (size_t i = 0; i < alts.size(); ++i) {
        HANUL_ASSIGN_OR_RETURN(std::string alt, visit(alts[i], hint + "-" + std::to_string(i),
                                                      path + "/" + key + "/" + std::to_string(i)));
        body += (i ? " | " : "") + alt;
      }
      return new_rule(hint, body);
    }
    if (s.contains("allOf")) return Error{fail(path, "allOf is not supported").message()};

    std::vector<std::string> types;
    if (s.contains("type")) {
      const json& t = s["type"];
      if (t.is_string()) {
        types.push_back(t.get<std::string>());
      } else if (t.is_array()) {
        for (const auto& x : t) {
          if (!x.is_string()) return Error{fail(path, "type list entries must be strings").message()};
          types.push_back(x.get<std::string>());
        }
      } else {
        return Error{fail(path, "type must be a string or a list").message()};
      }
    } else if (s.contains("properties")) {
      types.push_back("object");
    } else if (s.contains("items")) {
      types.push_back("array");
    } else {
      return use("value");
    }
    std::string body;
    for (const auto& type : types) {
      HANUL_ASSIGN_OR_RETURN(std::string one, visit_type(s, type, hint, path));
      body += (body.empty() ? "" : " | ") + one;
    }
    return types.size() == 1 ? body : "(" + body + ")";
  }

  Result<std::string> visit_type(const json& s, const std::string& type, const std::string& hint,
                                 const std::string& path) {
    if (type == "boolean" || type == "null" || type == "integer" || type == "number") {
      return use(type);
    }
    if (type == "string") {
      HANUL_ASSIGN_OR_RETURN(int64_t min, get_count(s, "minLength", path));
      HANUL_ASSIGN_OR_RETURN(int64_t max, get_count(s, "maxLength", path));
      if (min < 0 && max < 0) return use("string");
      if (min < 0) min = 0;
      if (max >= 0 && max < min) return Error{fail(path, "maxLength < minLength").message()};
      use("char");
      std::string rep = "{" + std::to_string(min) + "," + (max >= 0 ? std::to_string(max) : "") + "}";
      return new_rule(hint + "-string", "\"\\\"\" char" + rep + " \"\\\"\"");
    }
    if (type == "array") return visit_array(s, hint, path);
    if (type == "object") return visit_object(s, hint, path);
    return Error{fail(path, "unknown type '" + type + "'").message()};
  }

  Result<std::string> visit_array(const json& s, const std::string& hint, const std::string& path) {
    HANUL_ASSIGN_OR_RETURN(int64_t min, get_count(s, "minItems", path));
    HANUL_ASSIGN_OR_RETURN(int64_t max, get_count(s, "maxItems", path));
    if (min < 0) min = 0;
    if (max >= 0 && max < min) return Error{fail(path, "maxItems < minItems").message()};
    use("ws");
    std::string item;
    if (s.contains("items")) {
      HANUL_ASSIGN_OR_RETURN(std::string e, visit(s["items"], hint + "-item", path + "/items"));
      item = new_rule(hint + "-item", e);
    } else {
      item = use("value");
    }
    std::string body;
    if (max == 0) {
      body = "\"[\" ws \"]\"";
    } else {
      // item ("," ws item){min-1, max-1}
      int64_t lo = std::max<int64_t>(min - 1, 0);
      std::string rep = "{" + std::to_string(lo) + "," + (max >= 0 ? std::to_string(max - 1) : "") + "}";
      std::string list = item + " (\",\" ws " + item + ")" + rep;
      body = "\"[\" ws " + (min == 0 ? "(" + list + ")?" : list) + " \"]\"";
    }
    return new_rule(hint, body);
  }

  Result<std::string> visit_object(const json& s, const std::string& hint, const std::string& path) {
    use("ws");
    if (!s.contains("properties")) {
      bool closed = s.contains("additionalProperties") && s["additionalProperties"] == false;
      if (closed) return new_rule(hint, "\"{\" ws \"}\"");
      return use("object");
    }
    const json& props = s["properties"];
    if (!props.is_object()) return Error{fail(path, "properties must be an object").message()};
    std::set<std::string> required;
    if (s.contains("required")) {
      if (!s["required"].is_array()) return Error{fail(path, "required must be a list").message()};
      for (const auto& r : s["required"]) {
        if (!r.is_string()) return Error{fail(path, "required entries must be strings").message()};
        if (!props.contains(r.get<std::string>())) {
          return Error{fail(path, "required property '" + r.get<std::string>() +
                                      "' is not in properties").message()};
        }
        required.insert(r.get<std::string>());
      }
    }
    std::vector<std::string> kv;
    std::vector<bool> opt;
    for (const auto& [key, sub] : props.items()) {
      HANUL_ASSIGN_OR_RETURN(std::string v, visit(sub, hint + "-" + key, path + "/properties/" + key));
      kv.push_back(new_rule(hint + "-" + key + "-kv",
                            literal(json(key).dump()) + " \":\" ws " + v));
      opt.push_back(!required.count(key));
    }
    // Properties in order, each optional one may be left out, commas only between those
    // present: first(i) picks the first property written, rest(i) the ones after it.
    size_t n = kv.size();
    std::vector<std::string> rest(n + 1), first(n + 1);
    rest[n] = "";
    first[n] = "";
    for (size_t i = n; i-- > 0;) {
      std::string tail = rest[i + 1];
      std::string item = "\",\" ws " + kv[i];
      std::string r = (opt[i] ? "(" + item + ")?" : item) + (tail.empty() ? "" : " " + tail);
      rest[i] = new_rule(hint + "-rest", r);
      std::string here = kv[i] + (rest[i + 1].empty() ? "" : " " + rest[i + 1]);
      if (opt[i]) {
        first[i] = first[i + 1].empty() ? "(" + here + ")?" : "(" + here + " | " + first[i + 1] + ")";
      } else {
        first[i] = here;
      }
      first[i] = new_rule(hint + "-first", first[i]);
    }
    return new_rule(hint, "\"{\" ws " + first[0] + " \"}\"");
  }

  const json& root_;
  std::map<std::string, std::string> rules_;
  std::set<std::string> names_;
  std::set<std::string> used_;
  std::map<std::string, std::string> ref_rules_;
};

}  // namespace

Result<std::string> json_schema_to_grammar(const nlohmann::json& schema) {
  Converter c(schema);
  return c.run();
}

}  // namespace hanul
