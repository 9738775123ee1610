// The syntax tree of a parsed chat template: expressions and statements of
// the Jinja subset that hanul runs (see jinja_parser.h for what it accepts).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "hanul/tokenizer/jinja_value.h"

namespace hanul::jinja {

struct Expr;
using ExprPtr = std::shared_ptr<const Expr>;

struct Expr {
  enum class Kind {
    kLiteral,   // value
    kName,      // name
    kList,      // args = items (also tuples)
    kDict,      // kwargs = entries (keys are string literals)
    kGetAttr,   // args[0].name
    kGetItem,   // args[0][args[1]]
    kSlice,     // args[0][args[1]:args[2]:args[3]] (null = omitted)
    kCall,      // args[0](args[1..], kwargs)
    kFilter,    // args[0] | name(args[1..], kwargs)
    kTest,      // args[0] is [not] name(args[1..]); negated
    kNeg,       // -args[0]
    kNot,       // not args[0]
    kBinary,    // args[0] name args[1]: + - * / // % ** ~ and or
    kCompare,   // args[0] ops[0] args[1] ops[1] args[2] ...: == != < <= > >= in notin
    kCond,      // args[1] if args[0] else args[2] (args[2] null: Undefined)
  };
  Kind kind = Kind::kLiteral;
  int line = 0;
  Value value;
  std::string name;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;
  bool negated = false;
};

struct Node;
using Body = std::vector<Node>;

struct Node {
  enum class Kind {
    kText,      // text
    kOutput,    // {{ expr }}
    kIf,        // branches (cond, body); else_body
    kFor,       // for targets in expr [if filter]: body; else_body
    kSet,       // {% set targets = expr %} or {% set name.attr = expr %} (attr non-empty)
    kSetBlock,  // {% set name %}body{% endset %}
    kBreak,
    kContinue,
    kGeneration,  // transformers' {% generation %}body{% endgeneration %}: renders body
  };
  Kind kind = Kind::kText;
  int line = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr filter;
  std::vector<std::string> targets;
  std::string attr;
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body;
  Body else_body;
};

}  // namespace hanul::jinja
