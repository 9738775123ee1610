// Parses a chat template into a tree (jinja_ast.h). The subset: text,
// {{ expr }}, {% if/elif/else %}, {% for x in y [if c] %} (with else, break,
// continue), {% set %} (names, tuples, ns.attr, set blocks), {# comments #},
// transformers' {% generation %}; expressions with Jinja's precedence
// (jinja2/parser.py): ternary, or, and, not, comparisons and in, + -, ~,
// * / // %, **, unary -, then postfix .attr [item] [a:b] (call), | filter
// and `is` test. Anything else (macros, includes, unknown filters or tests)
// is an error that names it and its line.
#pragma once

#include <string>

#include "hanul/base/result.h"
#include "hanul/tokenizer/jinja_ast.h"

namespace hanul::jinja {

Result<Body> parse_template(const std::string& source);

// The filters and tests the evaluator implements (checked at parse time).
bool is_known_filter(const std::string& name);
bool is_known_test(const std::string& name);

}  // namespace hanul::jinja
