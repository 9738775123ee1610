// JSON schema -> grammar: hand-picked schemas accept and refuse the right texts, and for 200
// random schemas from a seeded generator a random walk that picks only allowed tokens of a
// small synthetic vocabulary (single bytes, multi-character pieces, split Hangul) always ends
// in JSON that parses and validates. The validator here covers the keywords the generator
// uses; tests/reference/check_json_schema.py re-validates the same samples with the Python
// `jsonschema` package (HANUL_JSON_SCHEMA_DUMP names the file they are written to).
#include "hanul/generate/json_schema.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "hanul/generate/grammar.h"

namespace hanul {
namespace {

using nlohmann::json;

GrammarMatcher matcher_for(const json& schema) {
  auto text = json_schema_to_grammar(schema);
  EXPECT_TRUE(text.ok()) << text.message();
  auto g = Grammar::parse(*text);
  EXPECT_TRUE(g.ok()) << g.message() << "\n" << *text;
  return GrammarMatcher(*g);
}

bool accepts(const json& schema, const std::string& text) {
  auto m = matcher_for(schema);
  return m.accept_bytes(text) && m.is_complete();
}

// ---- a small validator for the keywords json_schema.h supports -----------------------------

size_t code_points(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

bool validate(const json& v, const json& s, const json& root);

bool validate_type(const json& v, const std::string& t) {
  if (t == "null") return v.is_null();
  if (t == "boolean") return v.is_boolean();
  if (t == "integer") {
    return v.is_number_integer() || (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>());
  }
  if (t == "number") return v.is_number();
  if (t == "string") return v.is_string();
  if (t == "array") return v.is_array();
  if (t == "object") return v.is_object();
  return false;
}

bool validate(const json& v, const json& s, const json& root) {
  if (s.is_boolean()) return s.get<bool>();
  if (s.contains("$ref")) {
    return validate(v, root.at(json::json_pointer(s["$ref"].get<std::string>().substr(1))), root);
  }
  if (s.contains("const") && v != s["const"]) return false;
  if (s.contains("enum")) {
    bool any = false;
    for (const auto& e : s["enum"]) any = any || e == v;
    if (!any) return false;
  }
  if (s.contains("anyOf")) {
    bool any = false;
    for (const auto& sub : s["anyOf"]) any = any || validate(v, sub, root);
    if (!any) return false;
  }
  if (s.contains("oneOf")) {
    int n = 0;
    for (const auto& sub : s["oneOf"]) n += validate(v, sub, root);
    if (n != 1) return false;
  }
  if (s.contains("type")) {
    bool any = false;
    if (s["type"].is_string()) {
      any = validate_type(v, s["type"]);
    } else {
      for (const auto& t : s["type"]) any = any || validate_type(v, t);
    }
    if (!any) return false;
  }
  if (v.is_string()) {
    size_t n = code_points(v.get<std::string>());
    if (s.contains("minLength") && n < s["minLength"].get<size_t>()) return false;
    if (s.contains("maxLength") && n > s["maxLength"].get<size_t>()) return false;
  }
  if (v.is_array()) {
    if (s.contains("minItems") && v.size() < s["minItems"].get<size_t>()) return false;
    if (s.contains("maxItems") && v.size() > s["maxItems"].get<size_t>()) return false;
    if (s.contains("items")) {
      for (const auto& x : v) {
        if (!validate(x, s["items"], root)) return false;
      }
    }
  }
  if (v.is_object()) {
    const json props = s.value("properties", json::object());
    if (s.contains("required")) {
      for (const auto& r : s["required"]) {
        if (!v.contains(r.get<std::string>())) return false;
      }
    }
    for (const auto& [k, x] : v.items()) {
      if (props.contains(k)) {
        if (!validate(x, props[k], root)) return false;
      } else if (s.contains("additionalProperties") && s["additionalProperties"] == false) {
        return false;
      }
    }
  }
  return true;
}

// ---- hand-picked schemas -------------------------------------------------------------------

TEST(JsonSchema, ObjectRequiredAndOptional) {
  json s = json::parse(R"({"type": "object", "additionalProperties": false,
    "properties": {"a": {"type": "integer"}, "b": {"type": "string"}, "c": {"type": "boolean"}},
    "required": ["b"]})");
  EXPECT_TRUE(accepts(s, R"({"b": "x"})"));
  EXPECT_TRUE(accepts(s, R"({"a": -12, "b": "x", "c": true})"));
  EXPECT_TRUE(accepts(s, R"({"a":0,"b":""})"));
  EXPECT_TRUE(accepts(s, R"({"b":"x","c":false})"));
  EXPECT_FALSE(accepts(s, R"({"a": 1})"));         // b is required
  EXPECT_FALSE(accepts(s, R"({"a": 1,, "b": ""})"));
  EXPECT_FALSE(accepts(s, R"({, "b": ""})"));
  EXPECT_FALSE(accepts(s, R"({"b": "x", "d": 1})"));
  EXPECT_FALSE(accepts(s, R"({"a": 01, "b": ""})"));  // no leading zeros in JSON
  json all_opt = json::parse(R"({"properties": {"x": {"type": "null"}, "y": {"type": "null"}}})");
  EXPECT_TRUE(accepts(all_opt, "{}"));
  EXPECT_TRUE(accepts(all_opt, R"({"y": null})"));
  EXPECT_TRUE(accepts(all_opt, R"({"x": null, "y": null})"));
  EXPECT_FALSE(accepts(all_opt, R"({"y": null, "x": null})"));  // schema order only
}

TEST(JsonSchema, ArraysStringsEnumsConst) {
  json arr = json::parse(R"({"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 3})");
  EXPECT_FALSE(accepts(arr, "[1]"));
  EXPECT_TRUE(accepts(arr, "[1, 2.5]"));
  EXPECT_TRUE(accepts(arr, "[1,-2e10, 3.25E-2]"));
  EXPECT_FALSE(accepts(arr, "[1, 2, 3, 4]"));
  json empty = json::parse(R"({"type": "array", "maxItems": 0})");
  EXPECT_TRUE(accepts(empty, "[]"));
  EXPECT_FALSE(accepts(empty, "[1]"));
  json str = json::parse(R"({"type": "string", "minLength": 2, "maxLength": 3})");
  EXPECT_TRUE(accepts(str, R"("한글")"));
  EXPECT_TRUE(accepts(str, R"("a\"\u00e9")"));  // escapes count as one character
  EXPECT_FALSE(accepts(str, R"("a")"));
  EXPECT_FALSE(accepts(str, R"("abcd")"));
  EXPECT_FALSE(accepts(str, R"("\ud800x")"));  // a lone surrogate escape is refused
  EXPECT_FALSE(accepts(str, "\"a\nb\""));       // raw control characters are not JSON
  json en = json::parse(R"({"enum": ["red", 1, null, {"k": [true]}, "따옴\"표"]})");
  EXPECT_TRUE(accepts(en, R"("red")"));
  EXPECT_TRUE(accepts(en, R"({"k":[true]})"));
  EXPECT_TRUE(accepts(en, R"("따옴\"표")"));
  EXPECT_FALSE(accepts(en, R"("blue")"));
  json cn = json::parse(R"({"const": "x"})");
  EXPECT_TRUE(accepts(cn, R"("x")"));
  EXPECT_FALSE(accepts(cn, R"("y")"));
}

TEST(JsonSchema, RefsAnyOfAndTypeLists) {
  json s = json::parse(R"({
    "$defs": {"node": {"type": "object", "properties": {
        "v": {"type": "integer"}, "next": {"anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]}},
      "required": ["v", "next"]}},
    "definitions": {"name": {"type": ["string", "null"]}},
    "type": "object", "properties": {"head": {"$ref": "#/$defs/node"}, "n": {"$ref": "#/definitions/name"}},
    "required": ["head"]})");
  // Properties come in nlohmann::json's key order: "next" before "v".
  EXPECT_TRUE(accepts(s, R"({"head": {"next": {"next": null, "v": 2}, "v": 1}})"));
  EXPECT_TRUE(accepts(s, R"({"head": {"next": null, "v": 1}, "n": null})"));
  EXPECT_TRUE(accepts(s, R"({"head": {"next": null, "v": 1}, "n": "a"})"));
  EXPECT_FALSE(accepts(s, R"({"head": {"v": 1}})"));
  EXPECT_FALSE(accepts(s, R"({"head": {"next": 3, "v": 1}})"));
}

TEST(JsonSchema, AnyValue) {
  EXPECT_TRUE(accepts(json::object(), R"({"a": [1, "x", null, {"b": false}]})"));
  EXPECT_TRUE(accepts(json(true), "-3.5e2"));
}

TEST(JsonSchema, ErrorsNameThePath) {
  auto e1 = json_schema_to_grammar(json::parse(R"({"properties": {"a": {"$ref": "#/$defs/nope"}}})"));
  ASSERT_FALSE(e1.ok());
  EXPECT_NE(e1.message().find("/properties/a"), std::string::npos) << e1.message();
  EXPECT_NE(e1.message().find("#/$defs/nope"), std::string::npos);
  auto e2 = json_schema_to_grammar(json::parse(R"({"type": "strnig"})"));
  ASSERT_FALSE(e2.ok());
  EXPECT_NE(e2.message().find("unknown type 'strnig'"), std::string::npos);
  auto e3 = json_schema_to_grammar(json::parse(R"({"type": "string", "minLength": -1})"));
  EXPECT_FALSE(e3.ok());
  auto e4 = json_schema_to_grammar(json::parse(R"({"properties": {}, "required": ["x"]})"));
  EXPECT_FALSE(e4.ok());
  auto e5 = json_schema_to_grammar(json::parse(R"({"$ref": "http://example.com/s.json"})"));
  EXPECT_FALSE(e5.ok());
}

// ---- random schemas ------------------------------------------------------------------------

class SchemaGen {
 public:
  explicit SchemaGen(uint32_t seed) : rng_(seed) {}

  json schema() {
    defs_ = json::object();
    json s = gen(0);
    if (!defs_.empty()) s[pick(2) ? "$defs" : "definitions"] = defs_;
    // A $ref written under "definitions" must point there: fix the prefix.
    if (s.contains("definitions")) fix_refs(s);
    return s;
  }

 private:
  int pick(int n) { return int(rng_() % uint32_t(n)); }

  void fix_refs(json& s) {
    if (s.is_object()) {
      if (s.contains("$ref")) s["$ref"] = "#/definitions/" + s["$ref"].get<std::string>().substr(8);
      for (auto& [k, v] : s.items()) fix_refs(v);
    } else if (s.is_array()) {
      for (auto& v : s) fix_refs(v);
    }
  }

  json literal_value() {
    static const json pool = json::parse(
        R"(["a", "한국어", "tab\there", "q\"uote", "", 0, -7, 3.5, true, false, null, [1, "x"], {"k": null}])");
    return pool[size_t(pick(int(pool.size())))];
  }

  json leaf() {
    switch (pick(8)) {
      case 0: {
        json s = {{"type", "string"}};
        if (pick(2)) {
          int lo = pick(4);
          s["minLength"] = lo;
          if (pick(2)) s["maxLength"] = lo + pick(5);
        } else if (pick(2)) {
          s["maxLength"] = pick(6);
        }
        return s;
      }
      case 1: return {{"type", "integer"}};
      case 2: return {{"type", "number"}};
      case 3: return {{"type", "boolean"}};
      case 4: return {{"type", "null"}};
      case 5: {
        json e = json::array();
        int n = 1 + pick(4);
        for (int i = 0; i < n; ++i) e.push_back(literal_value());
        return {{"enum", e}};
      }
      case 6: return {{"const", literal_value()}};
      default: return {{"type", json::array({"string", "null"})}, {"maxLength", 4}};
    }
  }

  json gen(int depth) {
    if (depth >= 3) return leaf();
    switch (pick(7)) {
      case 0:
      case 1: {
        json props = json::object();
        json required = json::array();
        int n = pick(5);
        for (int i = 0; i < n; ++i) {
          std::string key = std::string(1, char('a' + pick(26))) + std::to_string(i);
          if (pick(5) == 0) key = "키" + std::to_string(i);
          props[key] = gen(depth + 1);
          if (pick(2)) required.push_back(key);
        }
        json s = {{"type", "object"}, {"properties", props}};
        if (!required.empty()) s["required"] = required;
        if (pick(2)) s["additionalProperties"] = false;
        return s;
      }
      case 2: {
        json s = {{"type", "array"}, {"items", gen(depth + 1)}};
        int lo = pick(3);
        if (pick(2)) s["minItems"] = lo;
        if (pick(2)) s["maxItems"] = lo + pick(3);
        return s;
      }
      case 3: {
        json alts = json::array();
        int n = 2 + pick(2);
        for (int i = 0; i < n; ++i) alts.push_back(gen(depth + 1));
        return {{"anyOf", alts}};
      }
      case 4: {
        // oneOf with branches of distinct types, so no value matches two of them.
        std::vector<json> kinds = {{{"type", "string"}, {"maxLength", 5}},
                                   {{"type", "integer"}},
                                   {{"type", "boolean"}},
                                   {{"type", "null"}},
                                   {{"type", "array"}, {"items", {{"type", "integer"}}}, {"maxItems", 3}}};
        std::shuffle(kinds.begin(), kinds.end(), rng_);
        json alts = json::array();
        int n = 2 + pick(2);
        for (int i = 0; i < n; ++i) alts.push_back(kinds[i]);
        return {{"oneOf", alts}};
      }
      case 5: {
        std::string name = "d" + std::to_string(defs_.size());
        defs_[name] = nullptr;  // claim the name before generating what may add more defs
        defs_[name] = gen(depth + 1);
        return {{"$ref", "#/$defs/" + name}};
      }
      default: return leaf();
    }
  }

  std::mt19937 rng_;
  json defs_;
};

// The synthetic vocabulary: every printable ASCII byte, some multi-character pieces that cross
// JSON tokens, whole Hangul syllables, and Hangul split into byte pieces. Id 0 is the EOS.
std::vector<std::string> synthetic_vocab() {
  std::vector<std::string> v = {""};
  for (int c = 0x20; c < 0x7F; ++c) v.push_back(std::string(1, char(c)));
  for (const char* p : {"{\"", "\": ", "\":", ", \"", "\"}", "},", "[1", "true", "false", "null",
                        "12", "-0", "0.5", "e+", "\\u00e9", "\\\"", "\\n", "ab", "\"a", "\n",
                        "한", "국어", "키0", "\x95\x9C", "\xEA\xB8", "]}", "\"\""}) {
    v.push_back(p);
  }
  // Byte-fallback pieces for Hangul: the lead bytes of U+A000..U+DFFF and every continuation
  // byte, so any syllable can be spelled (and surrogates must be refused at the second byte).
  for (int b : {0xEA, 0xEB, 0xEC, 0xED}) v.push_back(std::string(1, char(b)));
  for (int b = 0x80; b < 0xC0; ++b) v.push_back(std::string(1, char(b)));
  return v;
}

struct Walk {
  std::string text;
  bool complete = false;
  bool dead_end = false;
};

Walk random_walk(GrammarMatcher& m, const std::vector<std::string>& vocab, std::mt19937& rng) {
  Walk w;
  const std::vector<int32_t> eog = {0};
  for (int step = 0; step < 4000; ++step) {
    std::vector<bool> ok = m.allowed(vocab, eog);
    std::vector<int32_t> choices;
    for (size_t i = 1; i < ok.size(); ++i) {
      if (ok[i]) choices.push_back(int32_t(i));
    }
    if (ok[0] && (choices.empty() || rng() % 10 < 7)) {
      w.complete = true;
      return w;
    }
    if (choices.empty()) {
      w.dead_end = true;
      return w;
    }
    int32_t id = choices[rng() % choices.size()];
    EXPECT_TRUE(m.accept_bytes(vocab[id]));
    w.text += vocab[id];
  }
  return w;
}

TEST(JsonSchema, RandomSchemasRandomWalksAlwaysValidate) {
  SchemaGen gen(20240611);
  std::mt19937 rng(7);
  const auto vocab = synthetic_vocab();
  const char* dump_path = std::getenv("HANUL_JSON_SCHEMA_DUMP");
  std::ofstream dump;
  if (dump_path) dump.open(dump_path);
  int n_valid = 0, n_schemas = 200;
  size_t total_bytes = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n_schemas; ++i) {
    json schema = gen.schema();
    auto text = json_schema_to_grammar(schema);
    ASSERT_TRUE(text.ok()) << text.message() << "\n" << schema.dump();
    auto g = Grammar::parse(*text);
    ASSERT_TRUE(g.ok()) << g.message() << "\n" << *text;
    GrammarMatcher m(*g);
    Walk w = random_walk(m, vocab, rng);
    ASSERT_FALSE(w.dead_end) << "schema " << i << ": " << schema.dump() << "\nso far: " << w.text;
    ASSERT_TRUE(w.complete) << "schema " << i << ": walk did not finish: " << w.text;
    json value;
    try {
      value = json::parse(w.text);
    } catch (const json::exception& e) {
      FAIL() << "schema " << i << ": output does not parse: " << e.what() << "\n" << w.text
             << "\n" << schema.dump();
    }
    EXPECT_TRUE(validate(value, schema, schema))
        << "schema " << i << ": " << schema.dump() << "\noutput: " << w.text;
    n_valid += validate(value, schema, schema);
    total_bytes += w.text.size();
    if (dump) dump << json({{"schema", schema}, {"output", w.text}}).dump() << "\n";
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(n_valid, n_schemas);
  std::printf("json schema walks: %d/%d valid, %zu bytes generated, %.2f s\n", n_valid, n_schemas,
              total_bytes, secs);
}

}  // namespace
}  // namespace hanul
