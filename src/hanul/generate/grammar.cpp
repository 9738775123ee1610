#include "hanul/generate/grammar.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>

#include "hanul/tokenizer/tokenizer.h"

namespace hanul {

bool GrammarSymbol::matches(uint32_t cp) const {
  bool in = false;
  for (const auto& [lo, hi] : ranges) {
    if (lo <= cp && cp <= hi) {
      in = true;
      break;
    }
  }
  return in != negated;
}

bool GrammarSymbol::intersects(uint32_t lo, uint32_t hi) const {
  if (!negated) {
    for (const auto& [a, b] : ranges) {
      if (a <= hi && lo <= b) return true;
    }
    return false;
  }
  // Negated: some code point of [lo, hi] lies outside every range. Walk lo upward past the
  // ranges that cover it.
  uint32_t cp = lo;
  bool moved = true;
  while (moved) {
    moved = false;
    for (const auto& [a, b] : ranges) {
      if (a <= cp && cp <= b) {
        if (b >= hi) return false;
        cp = b + 1;
        moved = true;
      }
    }
  }
  return cp <= hi;
}

// ---------------------------------------------------------------------------------------------
// Parsing. A recursive-descent parser over the text; repetitions are rewritten into helper
// rules the way GBNF defines them (S* -> S' ::= S S' | ε; S{m,n} -> m copies then n-m nested
// optional rules), so the recogniser only knows sequences, alternatives and rule references.

class GrammarParser {
 public:
  explicit GrammarParser(std::string_view text) : src_(text) {}

  Result<Grammar> run(std::string_view root_name) {
    skip_space(true);
    while (!at_end()) {
      HANUL_TRY(parse_rule());
      if (!error_.empty()) return Error{error_};
    }
    for (const auto& [name, id] : ids_) {
      if (!defined_[id]) {
        return Error{fmt_at(first_use_[id], "rule '" + name + "' is used but never defined")};
      }
    }
    auto root = ids_.find(std::string(root_name));
    if (root == ids_.end()) {
      return Error{"grammar: no rule named '" + std::string(root_name) + "' to start from"};
    }
    Grammar g;
    g.rule_names_ = names_;
    g.root_ = root->second;
    g.rule_alts_.resize(rules_.size());
    for (size_t r = 0; r < rules_.size(); ++r) {
      for (auto& alt : rules_[r]) {
        g.rule_alts_[r].push_back(uint32_t(g.symbols_.size()));
        for (auto& s : alt) g.symbols_.push_back(std::move(s));
        g.symbols_.push_back(GrammarSymbol{});  // kEnd
      }
    }
    HANUL_TRY(check_left_recursion(g));
    return g;
  }

 private:
  using Alt = std::vector<GrammarSymbol>;

  bool at_end() const { return pos_ >= src_.size(); }
  char peek(size_t k = 0) const { return pos_ + k < src_.size() ? src_[pos_ + k] : '\0'; }

  std::string fmt_at(size_t at, const std::string& what) const {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at && i < src_.size(); ++i) {
      if (src_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return "grammar: line " + std::to_string(line) + ", column " + std::to_string(col) + ": " +
           what;
  }
  Status fail(const std::string& what) const { return Error{fmt_at(pos_, what)}; }

  static bool is_word(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
  }

  void skip_space(bool newlines) {
    while (!at_end()) {
      char c = peek();
      if (c == '#') {
        while (!at_end() && peek() != '\n') ++pos_;
      } else if (c == ' ' || c == '\t' || (newlines && (c == '\n' || c == '\r'))) {
        ++pos_;
      } else {
        break;
      }
    }
  }

  uint32_t rule_id(const std::string& name, size_t at) {
    auto it = ids_.find(name);
    if (it != ids_.end()) return it->second;
    uint32_t id = uint32_t(rules_.size());
    ids_[name] = id;
    names_.push_back(name);
    rules_.emplace_back();
    defined_.push_back(false);
    first_use_.push_back(at);
    return id;
  }
  uint32_t helper_rule(const std::string& base, std::vector<Alt> alts) {
    // '~' cannot appear in a rule name of the text, so helpers never clash with user rules.
    std::string name = base + "~" + std::to_string(++n_helpers_);
    uint32_t id = rule_id(name, pos_);
    rules_[id] = std::move(alts);
    defined_[id] = true;
    return id;
  }
  static GrammarSymbol ref(uint32_t r) {
    GrammarSymbol s;
    s.kind = GrammarSymbol::kRule;
    s.rule = r;
    return s;
  }

  Status parse_rule() {
    size_t start = pos_;
    while (!at_end() && is_word(peek())) ++pos_;
    if (pos_ == start) return fail("expected a rule name");
    std::string name(src_.substr(start, pos_ - start));
    skip_space(false);
    if (src_.substr(pos_, 3) != "::=") return fail("expected '::=' after rule name '" + name + "'");
    pos_ += 3;
    uint32_t id = rule_id(name, start);
    if (defined_[id]) return Error{fmt_at(start, "rule '" + name + "' is defined twice")};
    defined_[id] = true;
    skip_space(true);
    std::vector<Alt> alts;
    HANUL_TRY(parse_alternates(name, alts, false));
    rules_[id] = std::move(alts);
    if (!at_end()) {
      if (peek() == '\r') ++pos_;
      if (peek() != '\n') {
        if (peek() == ')') return fail("')' without a matching '('");
        return fail(std::string("unexpected '") + peek() + "'");
      }
    }
    skip_space(true);
    return Status::Ok();
  }

  Status parse_alternates(const std::string& name, std::vector<Alt>& alts, bool nested) {
    alts.emplace_back();
    HANUL_TRY(parse_sequence(name, alts.back(), nested));
    while (peek() == '|') {
      ++pos_;
      skip_space(true);
      alts.emplace_back();
      HANUL_TRY(parse_sequence(name, alts.back(), nested));
    }
    return Status::Ok();
  }

  // One character of a literal or class; sets cp. Escapes as in llama.cpp's GBNF.
  Status parse_char(uint32_t& cp) {
    if (at_end()) return fail("unexpected end of grammar");
    unsigned char c = uint8_t(peek());
    if (c == '\\') {
      char e = peek(1);
      int hex = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
      if (hex) {
        cp = 0;
        for (int i = 0; i < hex; ++i) {
          char h = peek(2 + i);
          int v = (h >= '0' && h <= '9')   ? h - '0'
                  : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                  : (h >= 'A' && h <= 'F') ? h - 'A' + 10
                                           : -1;
          if (v < 0) return fail("\\" + std::string(1, e) + " needs " + std::to_string(hex) +
                                 " hex digits");
          cp = cp * 16 + uint32_t(v);
        }
        pos_ += 2 + hex;
        if (cp > 0x10FFFF) return fail("code point above U+10FFFF");
        return Status::Ok();
      }
      switch (e) {
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case '\\': case '"': case '[': case ']': case '-': case '^': cp = uint8_t(e); break;
        default: return fail(std::string("unknown escape '\\") + e + "'");
      }
      pos_ += 2;
      return Status::Ok();
    }
    // A UTF-8 character of the grammar text itself.
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || pos_ + len > src_.size()) return fail("invalid UTF-8 in the grammar");
    cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
    for (int i = 1; i < len; ++i) {
      unsigned char d = uint8_t(src_[pos_ + i]);
      if ((d & 0xC0) != 0x80) return fail("invalid UTF-8 in the grammar");
      cp = (cp << 6) | (d & 0x3F);
    }
    pos_ += len;
    return Status::Ok();
  }

  Status parse_int(int& v) {
    size_t start = pos_;
    v = 0;
    while (peek() >= '0' && peek() <= '9') {
      v = v * 10 + (peek() - '0');
      if (v > 100000) return fail("repetition count too large");
      ++pos_;
    }
    if (pos_ == start) return fail("expected a number in {m,n}");
    return Status::Ok();
  }

  // Rewrites the last item of seq (from index last) as repeated min..max times (max < 0: no
  // upper bound).
  Status repeat(const std::string& name, Alt& seq, size_t last, int min, int max) {
    if (last >= seq.size()) return fail("a repetition needs an item before it");
    if (max >= 0 && max < min) return fail("{m,n} with n < m");
    Alt item(seq.begin() + last, seq.end());
    seq.resize(last);
    for (int i = 0; i < min; ++i) seq.insert(seq.end(), item.begin(), item.end());
    if (max < 0) {
      // S' ::= S S' | ε
      uint32_t id = helper_rule(name, {});
      Alt rec = item;
      rec.push_back(ref(id));
      rules_[id] = {rec, Alt{}};
      seq.push_back(ref(id));
    } else if (max > min) {
      // S'(1) ::= S | ε ; S'(k) ::= S S'(k-1) | ε
      uint32_t prev = 0;
      for (int k = 1; k <= max - min; ++k) {
        Alt rec = item;
        if (k > 1) rec.push_back(ref(prev));
        prev = helper_rule(name, {rec, Alt{}});
      }
      seq.push_back(ref(prev));
    }
    return Status::Ok();
  }

  Status parse_sequence(const std::string& name, Alt& seq, bool nested) {
    size_t last = seq.size();  // start of the last item, for postfix operators
    bool have_item = false;
    while (!at_end()) {
      char c = peek();
      if (c == '"') {
        ++pos_;
        last = seq.size();
        have_item = true;
        while (peek() != '"') {
          if (at_end()) return fail("unterminated string literal");
          if (peek() == '\n') return fail("newline in a string literal (use \\n)");
          uint32_t cp;
          HANUL_TRY(parse_char(cp));
          GrammarSymbol s;
          s.kind = GrammarSymbol::kChars;
          s.ranges.push_back({cp, cp});
          seq.push_back(std::move(s));
        }
        ++pos_;
        if (seq.size() == last) {
          // "" is ε: nothing to repeat, but keep postfix operators legal.
          have_item = false;
        }
      } else if (c == '[') {
        ++pos_;
        GrammarSymbol s;
        s.kind = GrammarSymbol::kChars;
        if (peek() == '^') {
          s.negated = true;
          ++pos_;
        }
        while (peek() != ']') {
          if (at_end()) return fail("unterminated character class");
          uint32_t lo, hi;
          HANUL_TRY(parse_char(lo));
          hi = lo;
          if (peek() == '-' && peek(1) != ']' && pos_ + 1 < src_.size()) {
            ++pos_;
            HANUL_TRY(parse_char(hi));
            if (hi < lo) return fail("character range with its end before its start");
          }
          s.ranges.push_back({lo, hi});
        }
        ++pos_;
        last = seq.size();
        have_item = true;
        seq.push_back(std::move(s));
      } else if (c == '.') {
        ++pos_;
        GrammarSymbol s;
        s.kind = GrammarSymbol::kChars;
        s.negated = true;  // outside no range: any character
        last = seq.size();
        have_item = true;
        seq.push_back(std::move(s));
      } else if (is_word(c)) {
        size_t start = pos_;
        while (!at_end() && is_word(peek())) ++pos_;
        std::string ref_name(src_.substr(start, pos_ - start));
        // A name followed by ::= starts the next rule: the previous one ended at a newline.
        last = seq.size();
        have_item = true;
        seq.push_back(ref(rule_id(ref_name, start)));
      } else if (c == '(') {
        ++pos_;
        skip_space(true);
        std::vector<Alt> alts;
        HANUL_TRY(parse_alternates(name, alts, true));
        if (peek() != ')') return fail("expected ')'");
        ++pos_;
        last = seq.size();
        have_item = true;
        seq.push_back(ref(helper_rule(name, std::move(alts))));
      } else if (c == '*' || c == '+' || c == '?') {
        if (!have_item) return fail(std::string("'") + c + "' needs an item before it");
        ++pos_;
        HANUL_TRY(repeat(name, seq, last, c == '+' ? 1 : 0, c == '?' ? 1 : -1));
        have_item = false;  // a** is an error, as in llama.cpp's parser
      } else if (c == '{') {
        if (!have_item) return fail("'{' needs an item before it");
        ++pos_;
        skip_space(nested);
        int min = 0, max = -1;
        HANUL_TRY(parse_int(min));
        skip_space(nested);
        if (peek() == '}') {
          max = min;
        } else if (peek() == ',') {
          ++pos_;
          skip_space(nested);
          if (peek() >= '0' && peek() <= '9') {
            HANUL_TRY(parse_int(max));
            skip_space(nested);
          }
          if (peek() != '}') return fail("expected '}'");
        } else {
          return fail("expected ',' or '}' in {m,n}");
        }
        ++pos_;
        HANUL_TRY(repeat(name, seq, last, min, max));
        have_item = false;
      } else {
        break;
      }
      skip_space(nested);
    }
    return Status::Ok();
  }

  // A rule that can reach itself without consuming a character would make the recogniser
  // loop; reject it here with the rule's name.
  Status check_left_recursion(const Grammar& g) {
    size_t n = g.rule_alts_.size();
    std::vector<bool> nullable(n, false);
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t r = 0; r < n; ++r) {
        if (nullable[r]) continue;
        for (uint32_t at : g.rule_alts_[r]) {
          bool all = true;
          for (uint32_t i = at; g.symbols_[i].kind != GrammarSymbol::kEnd; ++i) {
            const auto& s = g.symbols_[i];
            if (s.kind == GrammarSymbol::kChars || !nullable[s.rule]) {
              all = false;
              break;
            }
          }
          if (all) {
            nullable[r] = changed = true;
            break;
          }
        }
      }
    }
    // left[r]: rules reachable from r before any character.
    std::vector<std::vector<uint32_t>> left(n);
    for (size_t r = 0; r < n; ++r) {
      for (uint32_t at : g.rule_alts_[r]) {
        for (uint32_t i = at; g.symbols_[i].kind == GrammarSymbol::kRule; ++i) {
          left[r].push_back(g.symbols_[i].rule);
          if (!nullable[g.symbols_[i].rule]) break;
        }
      }
    }
    std::vector<int> mark(n, 0);  // 0 new, 1 on the path, 2 done
    std::function<int(uint32_t)> dfs = [&](uint32_t r) -> int {
      mark[r] = 1;
      for (uint32_t q : left[r]) {
        if (mark[q] == 1) return int(q);
        if (mark[q] == 0) {
          int found = dfs(q);
          if (found >= 0) return found;
        }
      }
      mark[r] = 2;
      return -1;
    };
    for (size_t r = 0; r < n; ++r) {
      if (mark[r] == 0) {
        int found = dfs(uint32_t(r));
        if (found >= 0) {
          return Error{"grammar: rule '" + g.rule_names_[found] +
                       "' is left-recursive (it can reach itself before reading a character); "
                       "rewrite it with repetition, e.g. x ::= item (\",\" item)*"};
        }
      }
    }
    return Status::Ok();
  }

  std::string_view src_;
  size_t pos_ = 0;
  std::string error_;
  std::map<std::string, uint32_t> ids_;
  std::vector<std::string> names_;
  std::vector<std::vector<Alt>> rules_;
  std::vector<bool> defined_;
  std::vector<size_t> first_use_;
  int n_helpers_ = 0;
};

Result<Grammar> Grammar::parse(std::string_view text, std::string_view root) {
  GrammarParser p(text);
  return p.run(root);
}

// ---------------------------------------------------------------------------------------------
// Recognition.

namespace {

constexpr size_t kFar = size_t{1} << 40;  // "cannot complete"; sums of a few stay far from overflow

size_t utf8_length(uint32_t cp) { return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4; }

// The UTF-8 length of the smallest scalar value a character class matches (kFar if none).
size_t min_char_bytes(const GrammarSymbol& s) {
  if (!s.negated) {
    size_t best = kFar;
    for (const auto& [a, b] : s.ranges) {
      uint32_t cp = a;
      if (cp >= 0xD800 && cp <= 0xDFFF) {
        if (b < 0xE000) continue;  // only surrogates, which are not characters
        cp = 0xE000;
      }
      if (cp <= 0x10FFFF) best = std::min(best, utf8_length(cp));
    }
    return best;
  }
  // Negated: walk up from U+0000 past the ranges that cover it.
  uint32_t cp = 0;
  for (bool moved = true; moved;) {
    moved = false;
    for (const auto& [a, b] : s.ranges) {
      if (a <= cp && cp <= b) {
        if (b >= 0x10FFFF) return kFar;
        cp = b + 1;
        moved = true;
      }
    }
  }
  return utf8_length(cp);
}

}  // namespace

GrammarMatcher::GrammarMatcher(std::shared_ptr<const Grammar> grammar) : g_(std::move(grammar)) {
  // Fewest bytes from each position to the end of its alternative. Rule minima depend on each
  // other (recursion), so iterate from "unreachable" down to the fixed point; each round
  // settles at least one more rule, so it ends within n_rules + 1 rounds.
  const auto& syms = g_->symbols_;
  std::vector<size_t> char_bytes(syms.size(), 0);
  for (size_t p = 0; p < syms.size(); ++p) {
    if (syms[p].kind == GrammarSymbol::kChars) char_bytes[p] = min_char_bytes(syms[p]);
  }
  std::vector<size_t> rest(syms.size() + 1, 0), rule_min(g_->rule_alts_.size(), kFar);
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t p = syms.size(); p-- > 0;) {
      const GrammarSymbol& s = syms[p];
      size_t here = s.kind == GrammarSymbol::kEnd   ? 0
                    : s.kind == GrammarSymbol::kChars ? char_bytes[p]
                                                      : rule_min[s.rule];
      rest[p] = s.kind == GrammarSymbol::kEnd ? 0 : std::min(kFar, here + rest[p + 1]);
    }
    for (size_t r = 0; r < rule_min.size(); ++r) {
      size_t m = kFar;
      for (uint32_t at : g_->rule_alts_[r]) m = std::min(m, rest[at]);
      if (m < rule_min[r]) {
        rule_min[r] = m;
        changed = true;
      }
    }
  }
  min_rest_ = std::make_shared<const std::vector<size_t>>(std::move(rest));
  reset();
}

void GrammarMatcher::reset() {
  state_ = State{};
  std::vector<Stack> out;
  for (uint32_t at : g_->rule_alts_[g_->root_]) expand(Stack{at}, out);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  state_.stacks = std::move(out);
}

// Moves a stack forward until its top is a character class (or it is empty: the input so far
// is complete), forking at every rule reference into one stack per alternative.
void GrammarMatcher::expand(Stack stack, std::vector<Stack>& out) const {
  while (!stack.empty()) {
    const GrammarSymbol& s = g_->symbols_[stack.back()];
    if (s.kind == GrammarSymbol::kEnd) {
      stack.pop_back();
      continue;
    }
    if (s.kind == GrammarSymbol::kChars) break;
    stack.back() += 1;  // where to continue after the referenced rule
    // A reference in tail position returns to nothing: drop its frame now, so that a
    // repetition (S' ::= S S') keeps a stack of constant depth instead of one per round.
    if (g_->symbols_[stack.back()].kind == GrammarSymbol::kEnd) stack.pop_back();
    const auto& alts = g_->rule_alts_[s.rule];
    for (size_t i = 0; i + 1 < alts.size(); ++i) {
      Stack fork = stack;
      fork.push_back(alts[i]);
      expand(std::move(fork), out);
    }
    stack.push_back(alts.back());
  }
  out.push_back(std::move(stack));
}

void GrammarMatcher::advance(const std::vector<Stack>& in, uint32_t cp,
                             std::vector<Stack>& out) const {
  out.clear();
  for (const auto& st : in) {
    if (st.empty()) continue;
    if (!g_->symbols_[st.back()].matches(cp)) continue;
    Stack next = st;
    next.back() += 1;
    expand(std::move(next), out);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
}

// Feeds one byte. Whole characters advance the stacks; the first bytes of a multi-byte
// character are kept only while some stack could still accept a character starting with them.
bool GrammarMatcher::step_byte(State& s, uint8_t b) const {
  uint32_t cp;
  if (s.partial.empty()) {
    if (b < 0x80) {
      cp = b;
    } else {
      if (b < 0xC2 || b > 0xF4) return false;  // continuation, overlong lead or beyond U+10FFFF
      s.partial.push_back(char(b));
      goto check_partial;
    }
  } else {
    if ((b & 0xC0) != 0x80) return false;
    s.partial.push_back(char(b));
    size_t need = (uint8_t(s.partial[0]) >= 0xF0) ? 4 : (uint8_t(s.partial[0]) >= 0xE0) ? 3 : 2;
    if (s.partial.size() < need) goto check_partial;
    uint8_t lead = uint8_t(s.partial[0]);
    cp = need == 2 ? lead & 0x1F : need == 3 ? lead & 0x0F : lead & 0x07;
    for (size_t i = 1; i < need; ++i) cp = (cp << 6) | (uint8_t(s.partial[i]) & 0x3F);
    if ((need == 3 && cp < 0x800) || (need == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;  // overlong, out of range or a surrogate
    }
    s.partial.clear();
  }
  {
    std::vector<Stack> out;
    advance(s.stacks, cp, out);
    if (out.empty()) return false;
    s.stacks = std::move(out);
    return true;
  }
check_partial : {
  // The code points that begin with these bytes: fill the rest with 10000000 / 10111111.
  size_t need = (uint8_t(s.partial[0]) >= 0xF0) ? 4 : (uint8_t(s.partial[0]) >= 0xE0) ? 3 : 2;
  uint8_t lead = uint8_t(s.partial[0]);
  uint32_t lo = need == 2 ? lead & 0x1F : need == 3 ? lead & 0x0F : lead & 0x07;
  uint32_t hi = lo;
  for (size_t i = 1; i < need; ++i) {
    uint32_t bits = i < s.partial.size() ? (uint8_t(s.partial[i]) & 0x3F) : 0;
    lo = (lo << 6) | bits;
    hi = (hi << 6) | (i < s.partial.size() ? bits : 0x3F);
  }
  // Keep the range to valid scalar values (RFC 3629 section 4): a second byte that can only
  // lead to an overlong form, a surrogate or a value past U+10FFFF fails now, not a byte later.
  lo = std::max(lo, need == 2 ? 0x80u : need == 3 ? 0x800u : 0x10000u);
  hi = std::min(hi, 0x10FFFFu);
  if (need == 3 && lo >= 0xD800 && hi <= 0xDFFF) return false;
  if (need == 3 && lead == 0xED) hi = std::min(hi, 0xD7FFu);
  if (lo > hi) return false;
  for (const auto& st : s.stacks) {
    if (!st.empty() && g_->symbols_[st.back()].intersects(lo, hi)) return true;
  }
  return false;
}
}

bool GrammarMatcher::accept_bytes(std::string_view bytes) {
  State s = state_;
  for (char c : bytes) {
    if (!step_byte(s, uint8_t(c))) return false;
  }
  state_ = std::move(s);
  return true;
}

bool GrammarMatcher::can_accept(std::string_view bytes) const {
  State s = state_;
  for (char c : bytes) {
    if (!step_byte(s, uint8_t(c))) return false;
  }
  return true;
}

bool GrammarMatcher::is_complete() const {
  if (!state_.partial.empty()) return false;
  for (const auto& st : state_.stacks) {
    if (st.empty()) return true;
  }
  return false;
}

bool GrammarMatcher::is_finished() const {
  if (!is_complete()) return false;
  for (const auto& st : state_.stacks) {
    if (!st.empty()) return false;
  }
  return true;
}

// Each stack completes with the rest of its top alternative and of every frame below it (they
// point where to go on after the rule above returns); the state with its cheapest stack.
size_t GrammarMatcher::min_bytes(const State& s) const {
  const std::vector<size_t>& rest = *min_rest_;
  size_t best = kFar;
  size_t partial_left = 0;
  uint32_t lo = 0, hi = 0;
  if (!s.partial.empty()) {
    // The code points the unfinished character can still become (as in step_byte).
    const uint8_t lead = uint8_t(s.partial[0]);
    const size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
    partial_left = need - s.partial.size();
    lo = need == 2 ? lead & 0x1F : need == 3 ? lead & 0x0F : lead & 0x07;
    hi = lo;
    for (size_t i = 1; i < need; ++i) {
      const uint32_t bits = i < s.partial.size() ? (uint8_t(s.partial[i]) & 0x3F) : 0;
      lo = (lo << 6) | bits;
      hi = (hi << 6) | (i < s.partial.size() ? bits : 0x3F);
    }
  }
  for (const auto& st : s.stacks) {
    size_t total = 0;
    if (st.empty()) {
      if (!s.partial.empty()) continue;  // a finished parse takes no more bytes
      return 0;
    }
    if (!s.partial.empty()) {
      if (!g_->symbols_[st.back()].intersects(lo, hi)) continue;
      total = partial_left + rest[st.back() + 1];
    } else {
      total = rest[st.back()];
    }
    for (size_t i = 0; i + 1 < st.size(); ++i) total += rest[st[i]];
    best = std::min(best, total);
  }
  return best >= kFar ? kNever : best;
}

size_t GrammarMatcher::min_bytes_to_complete_after(std::string_view bytes) const {
  State s = state_;
  for (char c : bytes) {
    if (!step_byte(s, uint8_t(c))) return kNever;
  }
  return min_bytes(s);
}

std::vector<bool> GrammarMatcher::allowed(std::span<const std::string> pieces,
                                          std::span<const int32_t> eog) const {
  std::vector<bool> ok(pieces.size(), false);
  const bool complete = is_complete();
  for (int32_t id : eog) {
    if (id >= 0 && size_t(id) < ok.size()) ok[id] = complete;
  }
  // Pieces sharing a first byte share its step: try each first byte once, then the rest.
  std::vector<int8_t> first_ok(256, -1);
  std::vector<State> after_first(256);
  for (size_t id = 0; id < pieces.size(); ++id) {
    const std::string& piece = pieces[id];
    if (piece.empty()) continue;
    uint8_t b0 = uint8_t(piece[0]);
    if (first_ok[b0] < 0) {
      after_first[b0] = state_;
      first_ok[b0] = step_byte(after_first[b0], b0) ? 1 : 0;
    }
    if (!first_ok[b0]) continue;
    if (piece.size() == 1) {
      ok[id] = true;
      continue;
    }
    State s = after_first[b0];
    bool good = true;
    for (size_t i = 1; i < piece.size() && good; ++i) good = step_byte(s, uint8_t(piece[i]));
    ok[id] = good;
  }
  return ok;
}

void GrammarMatcher::mask_logits(std::span<float> logits, std::span<const std::string> pieces,
                                 std::span<const int32_t> eog) const {
  std::vector<bool> ok = allowed(pieces, eog);
  for (size_t i = 0; i < logits.size(); ++i) {
    if (i >= ok.size() || !ok[i]) logits[i] = -INFINITY;
  }
}

std::vector<std::string> GrammarMatcher::pieces_of(const Tokenizer& tok) {
  std::vector<std::string> pieces(size_t(tok.n_vocab()));
  for (int32_t id = 0; id < tok.n_vocab(); ++id) pieces[id] = tok.token_to_piece(id, false);
  return pieces;
}

}  // namespace hanul
