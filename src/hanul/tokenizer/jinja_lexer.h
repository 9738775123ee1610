// Jinja's lexer with the settings transformers uses for chat templates
// (trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False; see
// jinja2/lexer.py): the template becomes text runs and the tokens of each
// {{ ... }} and {% ... %}; {# comments #} vanish. Whitespace control (-, +)
// is applied to the text here, exactly where jinja2 applies it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hanul/base/result.h"

namespace hanul::jinja {

struct Token {
  enum class Type { kText, kVarBegin, kVarEnd, kBlockBegin, kBlockEnd, kName, kString, kInt, kFloat, kOp, kEof };
  Type type = Type::kEof;
  std::string text;  // text run, name, string literal (unescaped) or operator
  int64_t i = 0;
  double f = 0;
  int line = 1;
};

// Errors name the line: "chat template line 3: unterminated string".
Result<std::vector<Token>> lex(const std::string& source);

}  // namespace hanul::jinja
