// Renders a parsed chat template (jinja_parser.h) with Jinja's semantics as
// transformers sets them up (chat_template_utils.py: ImmutableSandboxedEnvironment,
// its own tojson, raise_exception, strftime_now, loop controls): for loops get
// their own scope (so a set inside a loop does not leak out; namespace() is the
// way out), Undefined is falsy and prints as "", Python's str()/repr() for
// printing values. raise_exception(msg) fails the render with exactly msg.
#pragma once

#include <map>
#include <string>

#include "hanul/base/result.h"
#include "hanul/tokenizer/jinja_ast.h"

namespace hanul::jinja {

Result<std::string> render(const Body& body, const std::map<std::string, Value>& globals);

}  // namespace hanul::jinja
