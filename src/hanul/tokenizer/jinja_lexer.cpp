#include "hanul/tokenizer/jinja_lexer.h"

#include "hanul/base/utf8.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <fmt/core.h>

namespace hanul::jinja {
namespace {

// Python's str.isspace() on ASCII; the text around tags is stripped with
// rstrip()/\s, which also take Unicode spaces, but templates only put ASCII
// whitespace next to their tags.
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// jinja2 splits the source on \r\n|\r|\n, drops one final empty line
// (keep_trailing_newline=False) and joins with \n.
std::string normalize_newlines(const std::string& in) {
  std::string out;
  out.reserve(in.size());
  for (size_t k = 0; k < in.size(); ++k) {
    if (in[k] == '\r') {
      out += '\n';
      if (k + 1 < in.size() && in[k + 1] == '\n') ++k;
    } else {
      out += in[k];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

class Lexer {
 public:
  explicit Lexer(std::string src) : src_(std::move(src)) {}

  Result<std::vector<Token>> run() {
    bool line_starting = true;  // jinja2: the previous match ended with a newline
    while (pos_ < src_.size()) {
      size_t tag = src_.find('{', pos_);
      while (tag != std::string::npos && tag + 1 < src_.size() && !std::strchr("{%#", src_[tag + 1])) {
        tag = src_.find('{', tag + 1);
      }
      if (tag == std::string::npos || tag + 1 >= src_.size()) {
        emit_text(src_.substr(pos_), pos_);
        pos_ = src_.size();
        break;
      }
      std::string text = src_.substr(pos_, tag - pos_);
      const char kind = src_[tag + 1];
      const char sign = tag + 2 < src_.size() ? src_[tag + 2] : '\0';
      if (sign == '-') {
        size_t e = text.size();
        while (e > 0 && is_space(text[e - 1])) --e;
        text.resize(e);
      } else if (sign != '+' && kind != '{') {  // lstrip_blocks: not for {{ }}
        const size_t nl = text.rfind('\n');
        const size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
        if (l_pos > 0 || line_starting) {
          bool all_space = l_pos < text.size();
          for (size_t k = l_pos; k < text.size(); ++k) all_space = all_space && is_space(text[k]);
          if (all_space) text.resize(l_pos);
        }
      }
      emit_text(text, pos_);
      pos_ = tag + 2;
      if (sign == '-' || sign == '+') ++pos_;
      if (kind == '#') {
        HANUL_TRY(comment(tag));
      } else {
        HANUL_TRY(tag_body(kind == '{', tag));
      }
      line_starting = pos_ > 0 && src_[pos_ - 1] == '\n';
    }
    Token eof;
    eof.type = Token::Type::kEof;
    eof.line = line_at(src_.size());
    tokens_.push_back(eof);
    return std::move(tokens_);
  }

 private:
  int line_at(size_t pos) {
    if (pos < line_pos_) {  // an error about an earlier position: count again
      line_pos_ = 0;
      line_ = 1;
    }
    for (; line_pos_ < pos && line_pos_ < src_.size(); ++line_pos_) {
      if (src_[line_pos_] == '\n') ++line_;
    }
    return line_;
  }

  Error error(size_t pos, const std::string& what) {
    return Error{fmt::format("chat template line {}: {}", line_at(pos), what)};
  }

  void emit_text(const std::string& text, size_t at) {
    if (text.empty()) return;
    Token t;
    t.type = Token::Type::kText;
    t.text = text;
    t.line = line_at(at);
    tokens_.push_back(std::move(t));
  }

  // After an end marker: '-' strips all following whitespace, '+' keeps it,
  // and otherwise trim_blocks drops one newline (blocks and comments only).
  void after_end(char sign, bool trim_newline) {
    if (sign == '-') {
      while (pos_ < src_.size() && is_space(src_[pos_])) ++pos_;
    } else if (sign != '+' && trim_newline && pos_ < src_.size() && src_[pos_] == '\n') {
      ++pos_;
    }
  }

  Status comment(size_t start) {
    const size_t e = src_.find("#}", pos_);
    if (e == std::string::npos) return error(start, "comment {# is never closed with #}");
    const char sign = e > pos_ && (src_[e - 1] == '-' || src_[e - 1] == '+') ? src_[e - 1] : '\0';
    pos_ = e + 2;
    after_end(sign, true);
    return Status::Ok();
  }

  Status tag_body(bool variable, size_t start) {
    Token begin;
    begin.type = variable ? Token::Type::kVarBegin : Token::Type::kBlockBegin;
    begin.line = line_at(start);
    tokens_.push_back(begin);
    const char close = variable ? '}' : '%';
    open_.clear();
    int depth = 0;  // open brackets: '}}' inside {{ {'a': {}} }} closes a dict, not the tag
    while (true) {
      while (pos_ < src_.size() && is_space(src_[pos_])) ++pos_;
      if (pos_ >= src_.size()) {
        return error(start, variable ? "'{{' is never closed with '}}'" : "'{%' is never closed with '%}'");
      }
      if (depth == 0) {
        char sign = '\0';
        size_t p = pos_;
        if ((src_[p] == '-' || src_[p] == '+') && p + 2 < src_.size() && src_[p + 1] == close &&
            src_[p + 2] == '}') {
          sign = src_[p];
          ++p;
        }
        if (p + 1 < src_.size() && src_[p] == close && src_[p + 1] == '}') {
          Token end;
          end.type = variable ? Token::Type::kVarEnd : Token::Type::kBlockEnd;
          end.line = line_at(pos_);
          tokens_.push_back(end);
          pos_ = p + 2;
          after_end(sign, !variable);
          return Status::Ok();
        }
      }
      HANUL_TRY(expression_token(depth));
    }
  }

  Status expression_token(int& depth) {
    const size_t at = pos_;
    Token t;
    t.line = line_at(at);
    const char c = src_[pos_];
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t e = pos_;
      while (e < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[e])) || src_[e] == '_')) ++e;
      t.type = Token::Type::kName;
      t.text = src_.substr(pos_, e - pos_);
      pos_ = e;
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      size_t e = pos_;
      bool is_float = false;
      while (e < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[e])) || src_[e] == '_')) ++e;
      if (e + 1 < src_.size() && src_[e] == '.' && std::isdigit(static_cast<unsigned char>(src_[e + 1]))) {
        is_float = true;
        ++e;
        while (e < src_.size() && std::isdigit(static_cast<unsigned char>(src_[e]))) ++e;
      }
      if (e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
        size_t x = e + 1;
        if (x < src_.size() && (src_[x] == '+' || src_[x] == '-')) ++x;
        if (x < src_.size() && std::isdigit(static_cast<unsigned char>(src_[x]))) {
          is_float = true;
          e = x;
          while (e < src_.size() && std::isdigit(static_cast<unsigned char>(src_[e]))) ++e;
        }
      }
      std::string digits;
      for (size_t k = pos_; k < e; ++k) {
        if (src_[k] != '_') digits += src_[k];
      }
      if (is_float) {
        t.type = Token::Type::kFloat;
        t.f = std::strtod(digits.c_str(), nullptr);
      } else {
        t.type = Token::Type::kInt;
        errno = 0;
        t.i = std::strtoll(digits.c_str(), nullptr, 10);
        if (errno == ERANGE) return error(at, fmt::format("integer {} is too large", digits));
      }
      t.text = digits;
      pos_ = e;
    } else if (c == '\'' || c == '"') {
      HANUL_TRY(string_literal(t));
    } else {
      static const char* kOps[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">",
                                   "=", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|"};
      for (const char* op : kOps) {
        const size_t n = std::strlen(op);
        if (src_.compare(pos_, n, op) == 0) {
          t.type = Token::Type::kOp;
          t.text = op;
          pos_ += n;
          break;
        }
      }
      if (t.type != Token::Type::kOp) return error(at, fmt::format("unexpected character '{}'", c));
      if (t.text == "(" || t.text == "[" || t.text == "{") {
        open_.push_back(t.text[0]);
        ++depth;
      }
      if (t.text == ")" || t.text == "]" || t.text == "}") {
        const char want = t.text == ")" ? '(' : t.text == "]" ? '[' : '{';
        if (open_.empty()) return error(at, fmt::format("unexpected '{}'", t.text));
        if (open_.back() != want) {
          return error(at, fmt::format("unexpected '{}': '{}' is still open", t.text, open_.back()));
        }
        open_.pop_back();
        --depth;
      }
    }
    tokens_.push_back(std::move(t));
    return Status::Ok();
  }

  // Python string escapes as jinja2 reads them (it evaluates the literal).
  Status string_literal(Token& t) {
    const size_t start = pos_;
    const char q = src_[pos_++];
    std::string out;
    while (true) {
      if (pos_ >= src_.size()) return error(start, "unterminated string literal");
      char c = src_[pos_++];
      if (c == q) break;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= src_.size()) return error(start, "unterminated string literal");
      c = src_[pos_++];
      switch (c) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case '0': out += '\0'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'v': out += '\v'; break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case '\n': break;  // a backslash-newline continues the line
        case 'x':
        case 'u':
        case 'U': {
          const int n = c == 'x' ? 2 : c == 'u' ? 4 : 8;
          if (pos_ + n > src_.size()) return error(start, "truncated \\x/\\u escape in a string literal");
          uint32_t cp = 0;
          for (int k = 0; k < n; ++k) {
            const char h = src_[pos_ + k];
            if (!std::isxdigit(static_cast<unsigned char>(h))) {
              return error(start, "bad \\x/\\u escape in a string literal");
            }
            cp = cp * 16 + (std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
          }
          pos_ += n;
          if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return error(start, "escape is not a Unicode scalar value");
          }
          utf8_append(out, cp);
          break;
        }
        default:  // Python keeps unknown escapes as written
          out += '\\';
          out += c;
      }
    }
    t.type = Token::Type::kString;
    t.text = std::move(out);
    return Status::Ok();
  }

  std::string src_;
  size_t pos_ = 0;
  size_t line_pos_ = 0;
  int line_ = 1;
  std::vector<Token> tokens_;
  std::string open_;  // the brackets open in the current tag
};

}  // namespace

Result<std::vector<Token>> lex(const std::string& source) { return Lexer(normalize_newlines(source)).run(); }

}  // namespace hanul::jinja
