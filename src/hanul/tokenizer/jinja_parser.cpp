#include "hanul/tokenizer/jinja_parser.h"

#include <algorithm>
#include <array>

#include <fmt/core.h>

#include "hanul/tokenizer/jinja_lexer.h"

namespace hanul::jinja {

bool is_known_filter(const std::string& name) {
  static const std::array<const char*, 30> kFilters = {
      "trim",   "tojson",     "length", "count",  "upper", "lower", "capitalize", "title",
      "first",  "last",       "join",   "default", "d",    "items", "string",     "replace",
      "list",   "selectattr", "rejectattr", "select", "reject", "map", "int",     "float",
      "abs",    "safe",       "reverse", "unique", "sort",  "dictsort"};
  return std::any_of(kFilters.begin(), kFilters.end(), [&](const char* f) { return name == f; });
}

bool is_known_test(const std::string& name) {
  static const std::array<const char*, 30> kTests = {
      "defined", "undefined", "none",   "string",  "number", "integer", "float",  "boolean",
      "true",    "false",     "mapping", "iterable", "sequence", "even", "odd",   "divisibleby",
      "equalto", "eq",        "==",     "ne",      "!=",     "lt",      "<",      "gt",
      ">",       "le",        "ge",     "in",      "sameas", "lower"};
  return std::any_of(kTests.begin(), kTests.end(), [&](const char* t) { return name == t; }) ||
         name == "upper" || name == "<=" || name == ">=";
}

namespace {

using T = Token::Type;

// Counts one level of nesting while a parse function runs.
struct Nest {
  explicit Nest(int& d) : d_(d) { ++d_; }
  ~Nest() { --d_; }
  int& d_;
};

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}

  Result<Body> run() {
    Body body;
    std::string stop;
    HANUL_TRY(parse_body(body, {}, stop));
    if (!stop.empty()) return error(fmt::format("unexpected '{{% {} %}}'", stop));
    return body;
  }

 private:
  const Token& cur() const { return toks_[pos_]; }
  const Token& peek(size_t k = 1) const { return toks_[std::min(pos_ + k, toks_.size() - 1)]; }
  bool is_op(const char* op) const { return cur().type == T::kOp && cur().text == op; }
  bool is_name(const char* n) const { return cur().type == T::kName && cur().text == n; }
  Error error(const std::string& what) const {
    return Error{fmt::format("chat template line {}: {}", cur().line, what)};
  }
  std::string describe(const Token& t) const {
    switch (t.type) {
      case T::kEof: return "the end of the template";
      case T::kVarEnd: return "'}}'";
      case T::kBlockEnd: return "'%}'";
      case T::kString: return "a string";
      default: return fmt::format("'{}'", t.text);
    }
  }
  Status expect_op(const char* op) {
    if (!is_op(op)) return error(fmt::format("expected '{}' but found {}", op, describe(cur())));
    ++pos_;
    return Status::Ok();
  }
  Status expect_block_end() {
    if (cur().type != T::kBlockEnd) return error(fmt::format("expected '%}}' but found {}", describe(cur())));
    ++pos_;
    return Status::Ok();
  }

  // Parses nodes until one of `stops` opens a block ({% endif %} etc.); the
  // stop keyword is left in `stop` with the position after it.
  Status parse_body(Body& body, const std::vector<std::string>& stops, std::string& stop) {
    stop.clear();
    while (cur().type != T::kEof) {
      const Token& t = cur();
      if (t.type == T::kText) {
        Node n;
        n.kind = Node::Kind::kText;
        n.line = t.line;
        n.text = t.text;
        body.push_back(std::move(n));
        ++pos_;
      } else if (t.type == T::kVarBegin) {
        Node n;
        n.kind = Node::Kind::kOutput;
        n.line = t.line;
        ++pos_;
        HANUL_ASSIGN_OR_RETURN(n.expr, expression());
        if (cur().type != T::kVarEnd) return error(fmt::format("expected '}}}}' but found {}", describe(cur())));
        ++pos_;
        body.push_back(std::move(n));
      } else if (t.type == T::kBlockBegin) {
        ++pos_;
        if (cur().type != T::kName) return error(fmt::format("expected a statement name, found {}", describe(cur())));
        const std::string kw = cur().text;
        if (std::find(stops.begin(), stops.end(), kw) != stops.end()) {
          stop = kw;
          ++pos_;
          return Status::Ok();
        }
        HANUL_TRY(statement(body));
      } else {
        return error(fmt::format("unexpected {}", describe(t)));
      }
    }
    return Status::Ok();
  }

  Status statement(Body& body) {
    Nest nest(depth_);
    if (depth_ > 500) return error("the template nests deeper than 500 levels");
    const std::string kw = cur().text;
    const int line = cur().line;
    ++pos_;
    Node n;
    n.line = line;
    if (kw == "if") {
      n.kind = Node::Kind::kIf;
      HANUL_ASSIGN_OR_RETURN(ExprPtr cond, expression());
      HANUL_TRY(expect_block_end());
      while (true) {
        Body branch;
        std::string stop;
        HANUL_TRY(parse_body(branch, {"elif", "else", "endif"}, stop));
        if (stop.empty()) return Error{fmt::format("chat template line {}: '{{% if %}}' is never closed", line)};
        n.branches.emplace_back(cond, std::move(branch));
        if (stop == "elif") {
          HANUL_ASSIGN_OR_RETURN(cond, expression());
          HANUL_TRY(expect_block_end());
          continue;
        }
        HANUL_TRY(expect_block_end());
        if (stop == "else") {
          HANUL_TRY(parse_body(n.else_body, {"endif"}, stop));
          if (stop.empty()) return Error{fmt::format("chat template line {}: '{{% if %}}' is never closed", line)};
          HANUL_TRY(expect_block_end());
        }
        break;
      }
    } else if (kw == "for") {
      n.kind = Node::Kind::kFor;
      HANUL_TRY(assign_targets(n.targets, "in"));
      if (!is_name("in")) return error(fmt::format("expected 'in' in the for loop, found {}", describe(cur())));
      ++pos_;
      HANUL_ASSIGN_OR_RETURN(n.expr, expression(/*with_cond=*/false));
      if (is_name("if")) {
        ++pos_;
        HANUL_ASSIGN_OR_RETURN(n.filter, expression(false));
      }
      if (is_name("recursive")) return error("recursive for loops are not supported");
      HANUL_TRY(expect_block_end());
      std::string stop;
      HANUL_TRY(parse_body(n.body, {"else", "endfor"}, stop));
      if (stop.empty()) return Error{fmt::format("chat template line {}: '{{% for %}}' is never closed", line)};
      HANUL_TRY(expect_block_end());
      if (stop == "else") {
        HANUL_TRY(parse_body(n.else_body, {"endfor"}, stop));
        if (stop.empty()) return Error{fmt::format("chat template line {}: '{{% for %}}' is never closed", line)};
        HANUL_TRY(expect_block_end());
      }
    } else if (kw == "set") {
      if (cur().type == T::kName && peek().type == T::kOp && peek().text == "." && peek(2).type == T::kName) {
        n.kind = Node::Kind::kSet;
        n.targets.push_back(cur().text);
        n.attr = peek(2).text;
        pos_ += 3;
      } else {
        HANUL_TRY(assign_targets(n.targets, "="));
      }
      if (is_op("=")) {
        n.kind = Node::Kind::kSet;
        ++pos_;
        HANUL_ASSIGN_OR_RETURN(n.expr, expression());
        HANUL_TRY(expect_block_end());
      } else {
        if (!n.attr.empty() || n.targets.size() != 1) return error("a set block assigns one plain name");
        if (is_op("|")) return error("filters on set blocks are not supported");
        n.kind = Node::Kind::kSetBlock;
        HANUL_TRY(expect_block_end());
        std::string stop;
        HANUL_TRY(parse_body(n.body, {"endset"}, stop));
        if (stop.empty()) return Error{fmt::format("chat template line {}: '{{% set %}}' is never closed", line)};
        HANUL_TRY(expect_block_end());
      }
    } else if (kw == "break" || kw == "continue") {
      n.kind = kw == "break" ? Node::Kind::kBreak : Node::Kind::kContinue;
      HANUL_TRY(expect_block_end());
    } else if (kw == "generation") {
      n.kind = Node::Kind::kGeneration;
      HANUL_TRY(expect_block_end());
      std::string stop;
      HANUL_TRY(parse_body(n.body, {"endgeneration"}, stop));
      if (stop.empty()) {
        return Error{fmt::format("chat template line {}: '{{% generation %}}' is never closed", line)};
      }
      HANUL_TRY(expect_block_end());
    } else if (kw == "endif" || kw == "endfor" || kw == "endset" || kw == "elif" || kw == "else" ||
               kw == "endgeneration") {
      pos_--;
      return error(fmt::format("unexpected '{{% {} %}}' with no open block it belongs to", kw));
    } else {
      pos_--;
      return error(fmt::format("unsupported statement '{{% {} %}}'", kw));
    }
    body.push_back(std::move(n));
    return Status::Ok();
  }

  // `x`, `k, v` or `(k, v)` before `in` / `=`.
  Status assign_targets(std::vector<std::string>& targets, const char* until) {
    const bool paren = is_op("(");
    if (paren) ++pos_;
    while (true) {
      if (cur().type != T::kName) return error(fmt::format("expected a variable name, found {}", describe(cur())));
      targets.push_back(cur().text);
      ++pos_;
      if (!is_op(",")) break;
      ++pos_;
    }
    if (paren) HANUL_TRY(expect_op(")"));
    return Status::Ok();
  }

  ExprPtr make(Expr::Kind kind, int line, std::vector<ExprPtr> args = {}, std::string name = {}) {
    auto e = std::make_shared<Expr>();
    e->kind = kind;
    e->line = line;
    e->args = std::move(args);
    e->name = std::move(name);
    return e;
  }

  Result<ExprPtr> expression(bool with_cond = true) {
    Nest nest(depth_);
    if (depth_ > 500) return error("the template nests deeper than 500 levels");
    HANUL_ASSIGN_OR_RETURN(ExprPtr e, parse_or());
    while (with_cond && is_name("if")) {
      const int line = cur().line;
      ++pos_;
      HANUL_ASSIGN_OR_RETURN(ExprPtr cond, parse_or());
      ExprPtr other;
      if (is_name("else")) {
        ++pos_;
        HANUL_ASSIGN_OR_RETURN(other, expression());
      }
      e = make(Expr::Kind::kCond, line, {cond, e, other});
    }
    return e;
  }

  Result<ExprPtr> parse_or() {
    HANUL_ASSIGN_OR_RETURN(ExprPtr e, parse_and());
    while (is_name("or")) {
      const int line = cur().line;
      ++pos_;
      HANUL_ASSIGN_OR_RETURN(ExprPtr r, parse_and());
      e = make(Expr::Kind::kBinary, line, {e, r}, "or");
    }
    return e;
  }

  Result<ExprPtr> parse_and() {
    HANUL_ASSIGN_OR_RETURN(ExprPtr e, parse_not());
    while (is_name("and")) {
      const int line = cur().line;
      ++pos_;
      HANUL_ASSIGN_OR_RETURN(ExprPtr r, parse_not());
      e = make(Expr::Kind::kBinary, line, {e, r}, "and");
    }
    return e;
  }

  Result<ExprPtr> parse_not() {
    Nest nest(depth_);
    if (depth_ > 500) return error("the template nests deeper than 500 levels");
    if (is_name("not")) {
      const int line = cur().line;
      ++pos_;
      HANUL_ASSIGN_OR_RETURN(ExprPtr e, parse_not());
      return make(Expr::Kind::kNot, line, {e});
    }
    return parse_compare();
  }

  Result<ExprPtr> parse_compare() {
    const int line = cur().line;
    HANUL_ASSIGN_OR_RETURN(ExprPtr first, parse_math1());
    auto cmp = std::make_shared<Expr>();
    cmp->kind = Expr::Kind::kCompare;
    cmp->line = line;
    cmp->args.push_back(first);
    while (true) {
      std::string op;
      if (cur().type == T::kOp && (cur().text == "==" || cur().text == "!=" || cur().text == "<" ||
                                   cur().text == "<=" || cur().text == ">" || cur().text == ">=")) {
        op = cur().text;
        ++pos_;
      } else if (is_name("in")) {
        op = "in";
        ++pos_;
      } else if (is_name("not") && peek().type == T::kName && peek().text == "in") {
        op = "notin";
        pos_ += 2;
      } else {
        break;
      }
      HANUL_ASSIGN_OR_RETURN(ExprPtr r, parse_math1());
      cmp->ops.push_back(op);
      cmp->args.push_back(r);
    }
    if (cmp->ops.empty()) return first;
    return ExprPtr(cmp);
  }

  Result<ExprPtr> parse_math1() {
    HANUL_ASSIGN_OR_RETURN(ExprPtr e, parse_concat());
    while (is_op("+") || is_op("-")) {
      const std::string op = cur().text;
      const int line = cur().line;
      ++pos_;
      HANUL_ASSIGN_OR_RETURN(ExprPtr r, parse_concat());
      e = make(Expr::Kind::kBinary, line, {e, r}, op);
    }
    return e;
  }

  Result<ExprPtr> parse_concat() {
    HANUL_ASSIGN_OR_RETURN(ExprPtr e, parse_math2());
    while (is_op("~")) {
      const int line = cur().line;
      ++pos_;
      HANUL_ASSIGN_OR_RETURN(ExprPtr r, parse_math2());
      e = make(Expr::Kind::kBinary, line, {e, r}, "~");
    }
    return e;
  }

  Result<ExprPtr> parse_math2() {
    HANUL_ASSIGN_OR_RETURN(ExprPtr e, parse_pow());
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const std::string op = cur().text;
      const int line = cur().line;
      ++pos_;
      HANUL_ASSIGN_OR_RETURN(ExprPtr r, parse_pow());
      e = make(Expr::Kind::kBinary, line, {e, r}, op);
    }
    return e;
  }

  Result<ExprPtr> parse_pow() {
    HANUL_ASSIGN_OR_RETURN(ExprPtr e, parse_unary(true));
    while (is_op("**")) {
      const int line = cur().line;
      ++pos_;
      HANUL_ASSIGN_OR_RETURN(ExprPtr r, parse_unary(true));
      e = make(Expr::Kind::kBinary, line, {e, r}, "**");
    }
    return e;
  }

  Result<ExprPtr> parse_unary(bool with_filter) {
    Nest nest(depth_);
    if (depth_ > 500) return error("the template nests deeper than 500 levels");
    const int line = cur().line;
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      const bool neg = cur().text == "-";
      ++pos_;
      HANUL_ASSIGN_OR_RETURN(ExprPtr inner, parse_unary(false));
      e = neg ? make(Expr::Kind::kNeg, line, {inner}) : inner;
    } else {
      HANUL_ASSIGN_OR_RETURN(e, primary());
    }
    HANUL_ASSIGN_OR_RETURN(e, postfix(e));
    if (with_filter) {
      HANUL_ASSIGN_OR_RETURN(e, filters_and_tests(e));
    }
    return e;
  }

  Result<ExprPtr> primary() {
    const Token& t = cur();
    const int line = t.line;
    if (t.type == T::kName) {
      ++pos_;
      if (t.text == "true" || t.text == "True") return literal(Value::boolean(true), line);
      if (t.text == "false" || t.text == "False") return literal(Value::boolean(false), line);
      if (t.text == "none" || t.text == "None") return literal(Value::none(), line);
      return make(Expr::Kind::kName, line, {}, t.text);
    }
    if (t.type == T::kString) {
      std::string s;
      while (cur().type == T::kString) {  // adjacent literals concatenate, as in Python
        s += cur().text;
        ++pos_;
      }
      return literal(Value::string(std::move(s)), line);
    }
    if (t.type == T::kInt) {
      ++pos_;
      return literal(Value::integer(t.i), line);
    }
    if (t.type == T::kFloat) {
      ++pos_;
      return literal(Value::number(t.f), line);
    }
    if (is_op("(")) {
      ++pos_;
      if (is_op(")")) {
        ++pos_;
        return make(Expr::Kind::kList, line);  // the empty tuple
      }
      HANUL_ASSIGN_OR_RETURN(ExprPtr e, expression());
      if (is_op(",")) {  // a tuple: we treat it as a list
        std::vector<ExprPtr> items{e};
        while (is_op(",")) {
          ++pos_;
          if (is_op(")")) break;
          HANUL_ASSIGN_OR_RETURN(ExprPtr x, expression());
          items.push_back(x);
        }
        e = make(Expr::Kind::kList, line, std::move(items));
      }
      HANUL_TRY(expect_op(")"));
      return e;
    }
    if (is_op("[")) {
      ++pos_;
      std::vector<ExprPtr> items;
      while (!is_op("]")) {
        HANUL_ASSIGN_OR_RETURN(ExprPtr x, expression());
        items.push_back(x);
        if (!is_op(",")) break;
        ++pos_;
      }
      HANUL_TRY(expect_op("]"));
      return make(Expr::Kind::kList, line, std::move(items));
    }
    if (is_op("{")) {
      ++pos_;
      auto d = std::make_shared<Expr>();
      d->kind = Expr::Kind::kDict;
      d->line = line;
      while (!is_op("}")) {
        HANUL_ASSIGN_OR_RETURN(ExprPtr k, expression());
        if (k->kind != Expr::Kind::kLiteral || !k->value.is_string()) {
          return error("dict keys must be string literals");
        }
        HANUL_TRY(expect_op(":"));
        HANUL_ASSIGN_OR_RETURN(ExprPtr v, expression());
        d->kwargs.emplace_back(k->value.s, v);
        if (!is_op(",")) break;
        ++pos_;
      }
      HANUL_TRY(expect_op("}"));
      return ExprPtr(d);
    }
    return error(fmt::format("expected an expression, found {}", describe(t)));
  }

  ExprPtr literal(Value v, int line) {
    auto e = std::make_shared<Expr>();
    e->kind = Expr::Kind::kLiteral;
    e->line = line;
    e->value = std::move(v);
    return e;
  }

  Result<ExprPtr> postfix(ExprPtr e) {
    while (true) {
      const int line = cur().line;
      if (is_op(".")) {
        ++pos_;
        if (cur().type == T::kName) {
          e = make(Expr::Kind::kGetAttr, line, {e}, cur().text);
        } else if (cur().type == T::kInt) {  // x.0 is x[0]
          e = make(Expr::Kind::kGetItem, line, {e, literal(Value::integer(cur().i), line)});
        } else {
          return error(fmt::format("expected an attribute name after '.', found {}", describe(cur())));
        }
        ++pos_;
      } else if (is_op("[")) {
        ++pos_;
        ExprPtr parts[3];
        int n = 0;
        bool slice = false;
        while (true) {
          if (is_op(":")) {
            slice = true;
            ++pos_;
            if (++n > 2) return error("a slice has at most three parts");
            continue;
          }
          if (is_op("]")) break;
          if (parts[n]) return error(fmt::format("expected ']' or ':', found {}", describe(cur())));
          HANUL_ASSIGN_OR_RETURN(parts[n], expression());
        }
        ++pos_;
        if (slice) {
          e = make(Expr::Kind::kSlice, line, {e, parts[0], parts[1], parts[2]});
        } else {
          if (!parts[0]) return error("empty subscript []");
          e = make(Expr::Kind::kGetItem, line, {e, parts[0]});
        }
      } else if (is_op("(")) {
        HANUL_ASSIGN_OR_RETURN(e, call(make(Expr::Kind::kCall, line, {e})));
      } else {
        return e;
      }
    }
  }

  // Parses "(args, k=v)" into e's args[1..] and kwargs.
  Result<ExprPtr> call(ExprPtr node) {
    auto e = std::const_pointer_cast<Expr>(node);
    HANUL_TRY(expect_op("("));
    while (!is_op(")")) {
      if (cur().type == T::kName && peek().type == T::kOp && peek().text == "=") {
        const std::string key = cur().text;
        pos_ += 2;
        HANUL_ASSIGN_OR_RETURN(ExprPtr v, expression());
        e->kwargs.emplace_back(key, v);
      } else {
        if (!e->kwargs.empty()) return error("a positional argument follows a keyword argument");
        HANUL_ASSIGN_OR_RETURN(ExprPtr v, expression());
        e->args.push_back(v);
      }
      if (!is_op(",")) break;
      ++pos_;
    }
    HANUL_TRY(expect_op(")"));
    return node;
  }

  Result<ExprPtr> filters_and_tests(ExprPtr e) {
    while (true) {
      const int line = cur().line;
      if (is_op("|")) {
        ++pos_;
        if (cur().type != T::kName) return error(fmt::format("expected a filter name, found {}", describe(cur())));
        const std::string name = cur().text;
        if (!is_known_filter(name)) return error(fmt::format("unsupported filter '{}'", name));
        ++pos_;
        e = make(Expr::Kind::kFilter, line, {e}, name);
        if (is_op("(")) {
          HANUL_ASSIGN_OR_RETURN(e, call(e));
        }
      } else if (is_name("is")) {
        ++pos_;
        bool negated = false;
        if (is_name("not")) {
          negated = true;
          ++pos_;
        }
        std::string name;
        if (cur().type == T::kName || (cur().type == T::kOp && (cur().text == "==" || cur().text == "!=" ||
                                                                 cur().text == "<" || cur().text == ">" ||
                                                                 cur().text == "<=" || cur().text == ">="))) {
          name = cur().text;
        } else {
          return error(fmt::format("expected a test name after 'is', found {}", describe(cur())));
        }
        if (!is_known_test(name)) return error(fmt::format("unsupported test '{}'", name));
        ++pos_;
        auto t = std::const_pointer_cast<Expr>(make(Expr::Kind::kTest, line, {e}, name));
        t->negated = negated;
        e = t;
        if (is_op("(")) {
          HANUL_ASSIGN_OR_RETURN(e, call(e));
        } else if (cur().type == T::kString || cur().type == T::kInt || cur().type == T::kFloat ||
                   (cur().type == T::kName && cur().text != "and" && cur().text != "or" && cur().text != "else" &&
                    cur().text != "if" && cur().text != "in" && cur().text != "not" && cur().text != "is")) {
          // jinja2 takes one argument without parentheses: `x is divisibleby 3`, `x is sameas none`.
          HANUL_ASSIGN_OR_RETURN(ExprPtr arg, primary());
          HANUL_ASSIGN_OR_RETURN(arg, postfix(arg));
          t->args.push_back(arg);
        }
      } else if (is_op("(")) {
        HANUL_ASSIGN_OR_RETURN(e, call(make(Expr::Kind::kCall, line, {e})));
      } else {
        return e;
      }
    }
  }

  std::vector<Token> toks_;
  size_t pos_ = 0;
  int depth_ = 0;  // nesting of expressions and blocks: a hostile template must not overflow the stack
};


}  // namespace

Result<Body> parse_template(const std::string& source) {
  HANUL_ASSIGN_OR_RETURN(std::vector<Token> tokens, lex(source));
  return Parser(std::move(tokens)).run();
}

}  // namespace hanul::jinja
