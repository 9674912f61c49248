#include "tokenizer/jinja_parser.h"

#include <fmt/format.h>

#include <algorithm>
#include <initializer_list>

#include "tokenizer/jinja_builtins.h"
#include "tokenizer/jinja_lexer.h"
#include "tokenizer/jinja_strings.h"
#include "util/error.h"

namespace pcm::jinja {

namespace {

constexpr int kMaxExprDepth = 256;  // depth of one expression tree (left-deep `a + b + c ...` chains)

struct ParseFail {
  int line;
  std::string message;
};

using Names = std::initializer_list<const char*>;

class Parser {
 public:
  explicit Parser(std::vector<Token> toks) : toks_(std::move(toks)) {}

  Body parse() { return subparse(nullptr); }

 private:
  std::vector<Token> toks_;
  size_t i_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
  std::vector<std::string> tag_stack_;
  std::vector<std::vector<std::string>> end_stack_;

  // ---- token stream ----
  const Token& cur() const { return toks_[i_]; }
  const Token& look() const { return toks_[std::min(i_ + 1, toks_.size() - 1)]; }
  Token next() {
    Token t = toks_[i_];
    if (t.type != Tok::Eof) ++i_;
    return t;
  }
  bool is_name(const Token& t, std::string_view v) const { return t.type == Tok::Name && t.text == v; }
  bool is_op(const Token& t, std::string_view v) const { return t.type == Tok::Op && t.text == v; }
  bool cur_name(std::string_view v) const { return is_name(cur(), v); }
  bool cur_op(std::string_view v) const { return is_op(cur(), v); }
  bool skip_name(std::string_view v) {
    if (!cur_name(v)) return false;
    next();
    return true;
  }
  bool skip_op(std::string_view v) {
    if (!cur_op(v)) return false;
    next();
    return true;
  }

  [[noreturn]] void fail(const std::string& msg, int line = -1) const { throw ParseFail{line < 0 ? cur().line : line, msg}; }

  void expect_fail(const std::string& what) const {
    if (cur().type == Tok::Eof) fail(fmt::format("unexpected end of template, expected '{}'.", what));
    fail(fmt::format("expected token '{}', got '{}'", what, describe_token(cur())));
  }
  Token expect_op(std::string_view op) {
    if (!cur_op(op)) expect_fail(std::string(op));
    return next();
  }
  Token expect_name(std::string_view v = {}) {
    if (cur().type != Tok::Name || (!v.empty() && cur().text != v)) expect_fail(v.empty() ? "name" : std::string(v));
    return next();
  }
  Token expect(Tok type) {
    if (cur().type != type) {
      Token probe;
      probe.type = type;
      expect_fail(describe_token(probe));
    }
    return next();
  }

  struct DepthGuard {
    Parser& p;
    explicit DepthGuard(Parser& parser) : p(parser) {
      if (++p.depth_ > kMaxNesting) p.fail("template nests too deeply");
    }
    ~DepthGuard() { --p.depth_; }
  };

  // ---- statements ----
  bool at_end_token(const std::vector<std::string>* end) const {
    if (!end || cur().type != Tok::Name) return false;
    return std::find(end->begin(), end->end(), cur().text) != end->end();
  }

  Body subparse(const std::vector<std::string>* end_tokens) {
    Body body;
    std::vector<OutputPiece> pending;
    int pending_line = 0;
    auto flush = [&]() {
      if (pending.empty()) return;
      auto node = std::make_unique<Node>(NodeKind::Output, pending_line);
      node->output = std::move(pending);
      pending.clear();
      body.push_back(std::move(node));
    };
    auto add = [&](OutputPiece piece, int line) {
      if (pending.empty()) pending_line = line;
      pending.push_back(std::move(piece));
    };
    if (end_tokens) end_stack_.push_back(*end_tokens);
    struct Pop {
      Parser& p;
      bool active;
      ~Pop() {
        if (active) p.end_stack_.pop_back();
      }
    } pop{*this, end_tokens != nullptr};
    while (cur().type != Tok::Eof) {
      const Token& t = cur();
      if (t.type == Tok::Data) {
        OutputPiece piece;
        piece.text = t.text;
        add(std::move(piece), t.line);
        next();
      } else if (t.type == Tok::VarBegin) {
        int line = t.line;
        next();
        OutputPiece piece;
        piece.expr = parse_tuple(false, true, {}, false, false);
        add(std::move(piece), line);
        expect(Tok::VarEnd);
      } else if (t.type == Tok::BlockBegin) {
        flush();
        next();
        if (at_end_token(end_tokens)) return body;
        body.push_back(parse_statement());
        expect(Tok::BlockEnd);
      } else {
        fail(fmt::format("unexpected '{}'", describe_token(t)));
      }
    }
    flush();
    return body;
  }

  [[noreturn]] void fail_unknown(const std::string* name, int line) {
    std::string msg = name ? fmt::format("Encountered unknown tag '{}'.", *name) : "Unexpected end of template.";
    if (!end_stack_.empty()) {
      std::vector<std::string> quoted;
      for (const auto& e : end_stack_.back()) quoted.push_back("'" + e + "'");
      bool nesting = false;
      if (name)
        for (const auto& level : end_stack_)
          nesting |= std::find(level.begin(), level.end(), *name) != level.end();
      if (nesting) {
        msg += fmt::format(" You probably made a nesting mistake. Jinja is expecting this tag, but currently looking for {}.",
                           fmt::join(quoted, " or "));
      } else {
        msg += fmt::format(" Jinja was looking for the following tags: {}.", fmt::join(quoted, " or "));
      }
    }
    if (!tag_stack_.empty()) msg += fmt::format(" The innermost block that needs to be closed is '{}'.", tag_stack_.back());
    fail(msg, line);
  }

  Body parse_statements(std::vector<std::string> end_tokens, bool drop_needle) {
    skip_op(":");
    expect(Tok::BlockEnd);
    Body body = subparse(&end_tokens);
    if (cur().type == Tok::Eof) {
      end_stack_.push_back(end_tokens);
      fail_unknown(nullptr, cur().line);
    }
    if (drop_needle) next();
    return body;
  }

  NodePtr parse_statement() {
    DepthGuard guard(*this);
    const Token& t = cur();
    if (t.type != Tok::Name) fail("tag name expected", t.line);
    std::string tag = t.text;
    static const char* kUnsupported[] = {"block", "extends", "include", "import", "from", "autoescape", "do"};
    for (const char* u : kUnsupported)
      if (tag == u) fail(fmt::format("the '{}' tag is not supported in chat templates", tag), t.line);
    tag_stack_.push_back(tag);
    NodePtr node;
    if (tag == "for") {
      node = parse_for();
    } else if (tag == "if") {
      node = parse_if();
    } else if (tag == "set") {
      node = parse_set();
    } else if (tag == "macro") {
      node = parse_macro();
    } else if (tag == "call") {
      node = parse_call_block();
    } else if (tag == "filter") {
      node = parse_filter_block();
    } else if (tag == "with") {
      node = parse_with();
    } else if (tag == "print") {
      node = parse_print();
    } else if (tag == "generation") {
      int line = next().line;
      node = std::make_unique<Node>(NodeKind::Scope, line);
      node->body = parse_statements({"endgeneration"}, true);
    } else if (tag == "break" || tag == "continue") {
      int line = next().line;
      if (loop_depth_ == 0) fail(fmt::format("'{}' outside loop", tag), line);
      node = std::make_unique<Node>(tag == "break" ? NodeKind::Break : NodeKind::Continue, line);
    } else {
      tag_stack_.pop_back();
      fail_unknown(&tag, t.line);
    }
    tag_stack_.pop_back();
    return node;
  }

  NodePtr parse_for() {
    int line = expect_name("for").line;
    auto node = std::make_unique<Node>(NodeKind::For, line);
    node->target = parse_assign_target(true, false, {"in"}, false);
    expect_name("in");
    node->expr = parse_tuple(false, false, {"recursive"}, false, false);
    if (skip_name("if")) node->filter = parse_expression(true);
    node->recursive = skip_name("recursive");
    ++loop_depth_;
    node->body = parse_statements({"endfor", "else"}, false);
    --loop_depth_;
    if (next().text != "endfor") node->else_body = parse_statements({"endfor"}, true);
    return node;
  }

  NodePtr parse_if() {
    int line = expect_name("if").line;
    auto node = std::make_unique<Node>(NodeKind::If, line);
    while (true) {
      IfBranch branch;
      branch.test = parse_tuple(false, false, {}, false, false);
      branch.body = parse_statements({"elif", "else", "endif"}, false);
      node->branches.push_back(std::move(branch));
      Token t = next();
      if (t.text == "elif") continue;
      if (t.text == "else") node->else_body = parse_statements({"endif"}, true);
      break;
    }
    return node;
  }

  NodePtr parse_set() {
    int line = next().line;
    ExprPtr target = parse_assign_target(true, false, {}, true);
    if (skip_op("=")) {
      auto node = std::make_unique<Node>(NodeKind::Set, line);
      node->target = std::move(target);
      node->expr = parse_tuple(false, true, {}, false, false);
      return node;
    }
    auto node = std::make_unique<Node>(NodeKind::SetBlock, line);
    node->target = std::move(target);
    node->expr = parse_filter(nullptr, false);
    int saved = loop_depth_;
    loop_depth_ = 0;
    node->body = parse_statements({"endset"}, true);
    loop_depth_ = saved;
    return node;
  }

  NodePtr parse_with() {
    int line = next().line;
    auto node = std::make_unique<Node>(NodeKind::With, line);
    while (cur().type != Tok::BlockEnd) {
      if (!node->targets.empty()) expect_op(",");
      node->targets.push_back(parse_assign_target(true, false, {}, false));
      expect_op("=");
      node->values.push_back(parse_expression(true));
    }
    node->body = parse_statements({"endwith"}, true);
    return node;
  }

  void parse_signature(Node& node) {
    expect_op("(");
    while (!cur_op(")")) {
      if (!node.params.empty()) expect_op(",");
      ExprPtr arg = parse_assign_target(false, true, {}, false);
      if (skip_op("=")) {
        node.defaults.push_back(parse_expression(true));
      } else if (!node.defaults.empty()) {
        fail("non-default argument follows default argument");
      }
      node.params.push_back(arg->name);
    }
    expect_op(")");
  }

  static void scan_names(const Body& body, Node& node);

  NodePtr parse_macro() {
    int line = next().line;
    auto node = std::make_unique<Node>(NodeKind::Macro, line);
    node->name = parse_assign_target(false, true, {}, false)->name;
    parse_signature(*node);
    int saved = loop_depth_;
    loop_depth_ = 0;
    node->body = parse_statements({"endmacro"}, true);
    loop_depth_ = saved;
    scan_names(node->body, *node);
    return node;
  }

  NodePtr parse_call_block() {
    int line = next().line;
    auto node = std::make_unique<Node>(NodeKind::CallBlock, line);
    if (cur_op("(")) parse_signature(*node);
    node->expr = parse_expression(true);
    if (node->expr->kind != ExprKind::Call) fail("expected call", line);
    int saved = loop_depth_;
    loop_depth_ = 0;
    node->body = parse_statements({"endcall"}, true);
    loop_depth_ = saved;
    scan_names(node->body, *node);
    return node;
  }

  NodePtr parse_filter_block() {
    int line = next().line;
    auto node = std::make_unique<Node>(NodeKind::FilterBlock, line);
    node->expr = parse_filter(nullptr, true);
    int saved = loop_depth_;
    loop_depth_ = 0;
    node->body = parse_statements({"endfilter"}, true);
    loop_depth_ = saved;
    return node;
  }

  NodePtr parse_print() {
    int line = next().line;
    auto node = std::make_unique<Node>(NodeKind::Output, line);
    while (cur().type != Tok::BlockEnd) {
      if (!node->output.empty()) expect_op(",");
      OutputPiece piece;
      piece.expr = parse_expression(true);
      node->output.push_back(std::move(piece));
    }
    return node;
  }

  // ---- assignment targets ----
  static bool can_assign(const Expr& e) {
    if (e.kind == ExprKind::Name || e.kind == ExprKind::NSRef) return true;
    if (e.kind == ExprKind::Tuple)
      return std::all_of(e.items.begin(), e.items.end(), [](const ExprPtr& x) { return can_assign(*x); });
    return false;
  }

  static const char* kind_word(const Expr& e) {
    switch (e.kind) {
      case ExprKind::Const: return "const";
      case ExprKind::List: return "list";
      case ExprKind::Dict: return "dict";
      case ExprKind::Tuple: return "tuple";
      default: return "expression";
    }
  }

  ExprPtr parse_assign_target(bool with_tuple, bool name_only, std::vector<std::string> extra_end, bool with_namespace) {
    ExprPtr target;
    if (name_only) {
      Token t = expect_name();
      target = std::make_unique<Expr>(ExprKind::Name, t.line);
      target->name = t.text;
    } else if (with_tuple) {
      target = parse_tuple(true, true, extra_end, false, with_namespace);
    } else {
      target = parse_primary(with_namespace);
    }
    if (!can_assign(*target)) fail(fmt::format("can't assign to '{}'", kind_word(*target)), target->line);
    return target;
  }

  // ---- expressions ----
  ExprPtr parse_expression(bool with_condexpr) { return with_condexpr ? parse_condexpr() : parse_or(); }

  ExprPtr parse_condexpr() {
    DepthGuard guard(*this);
    int line = cur().line;
    ExprPtr expr1 = parse_or();
    while (skip_name("if")) {
      ExprPtr expr2 = parse_or();
      ExprPtr expr3;
      if (skip_name("else")) expr3 = parse_condexpr();
      auto node = std::make_unique<Expr>(ExprKind::CondExpr, line);
      node->a = std::move(expr2);
      node->b = std::move(expr1);
      node->c = std::move(expr3);
      expr1 = std::move(node);
      line = cur().line;
    }
    return expr1;
  }

  ExprPtr binary(ExprKind kind, ExprPtr l, ExprPtr r, int line, std::string op = {}) {
    auto node = std::make_unique<Expr>(kind, line);
    node->a = std::move(l);
    node->b = std::move(r);
    node->name = std::move(op);
    return node;
  }

  ExprPtr parse_or() {
    int line = cur().line;
    ExprPtr left = parse_and();
    while (skip_name("or")) {
      left = binary(ExprKind::Or, std::move(left), parse_and(), line);
      line = cur().line;
    }
    return left;
  }

  ExprPtr parse_and() {
    int line = cur().line;
    ExprPtr left = parse_not();
    while (skip_name("and")) {
      left = binary(ExprKind::And, std::move(left), parse_not(), line);
      line = cur().line;
    }
    return left;
  }

  ExprPtr parse_not() {
    if (cur_name("not")) {
      DepthGuard guard(*this);
      int line = next().line;
      auto node = std::make_unique<Expr>(ExprKind::Not, line);
      node->a = parse_not();
      return node;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    int line = cur().line;
    ExprPtr expr = parse_math1();
    std::vector<std::string> ops;
    std::vector<ExprPtr> operands;
    while (true) {
      const Token& t = cur();
      if (t.type == Tok::Op && (t.text == "==" || t.text == "!=" || t.text == "<" || t.text == "<=" || t.text == ">" ||
                                t.text == ">=")) {
        ops.push_back(next().text);
        operands.push_back(parse_math1());
      } else if (skip_name("in")) {
        ops.push_back("in");
        operands.push_back(parse_math1());
      } else if (cur_name("not") && is_name(look(), "in")) {
        next();
        next();
        ops.push_back("notin");
        operands.push_back(parse_math1());
      } else {
        break;
      }
      line = cur().line;
    }
    if (ops.empty()) return expr;
    auto node = std::make_unique<Expr>(ExprKind::Compare, line);
    node->a = std::move(expr);
    node->ops = std::move(ops);
    node->items = std::move(operands);
    return node;
  }

  ExprPtr parse_math1() {
    int line = cur().line;
    ExprPtr left = parse_concat();
    while (cur_op("+") || cur_op("-")) {
      std::string op = next().text;
      left = binary(ExprKind::BinOp, std::move(left), parse_concat(), line, op);
      line = cur().line;
    }
    return left;
  }

  ExprPtr parse_concat() {
    int line = cur().line;
    std::vector<ExprPtr> args;
    args.push_back(parse_math2());
    while (skip_op("~")) args.push_back(parse_math2());
    if (args.size() == 1) return std::move(args[0]);
    auto node = std::make_unique<Expr>(ExprKind::Concat, line);
    node->items = std::move(args);
    return node;
  }

  ExprPtr parse_math2() {
    int line = cur().line;
    ExprPtr left = parse_pow();
    while (cur_op("*") || cur_op("/") || cur_op("//") || cur_op("%")) {
      std::string op = next().text;
      left = binary(ExprKind::BinOp, std::move(left), parse_pow(), line, op);
      line = cur().line;
    }
    return left;
  }

  ExprPtr parse_pow() {
    int line = cur().line;
    ExprPtr left = parse_unary(true);
    while (skip_op("**")) {
      left = binary(ExprKind::BinOp, std::move(left), parse_unary(true), line, "**");
      line = cur().line;
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    DepthGuard guard(*this);
    int line = cur().line;
    ExprPtr node;
    if (cur_op("-") || cur_op("+")) {
      bool neg = next().text == "-";
      node = std::make_unique<Expr>(neg ? ExprKind::Neg : ExprKind::Pos, line);
      node->a = parse_unary(false);
    } else {
      node = parse_primary(false);
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr parse_primary(bool with_namespace) {
    const Token& t = cur();
    int line = t.line;
    if (t.type == Tok::Name) {
      Token tok = next();
      if (tok.text == "true" || tok.text == "True" || tok.text == "false" || tok.text == "False") {
        auto node = std::make_unique<Expr>(ExprKind::Const, line);
        node->value = Value(tok.text == "true" || tok.text == "True");
        return node;
      }
      if (tok.text == "none" || tok.text == "None") {
        auto node = std::make_unique<Expr>(ExprKind::Const, line);
        node->value = Value::none();
        return node;
      }
      if (with_namespace && cur_op(".")) {
        next();
        Token attr = expect_name();
        auto node = std::make_unique<Expr>(ExprKind::NSRef, line);
        node->name = tok.text;
        node->attr = attr.text;
        return node;
      }
      auto node = std::make_unique<Expr>(ExprKind::Name, line);
      node->name = tok.text;
      return node;
    }
    if (t.type == Tok::String) {
      std::string buf;
      while (cur().type == Tok::String) buf += next().text;
      auto node = std::make_unique<Expr>(ExprKind::Const, line);
      node->value = Value(std::move(buf));
      return node;
    }
    if (t.type == Tok::Int || t.type == Tok::Float) {
      Token tok = next();
      auto node = std::make_unique<Expr>(ExprKind::Const, line);
      node->value = tok.type == Tok::Int ? Value(tok.ival) : Value(tok.fval);
      return node;
    }
    if (cur_op("(")) {
      next();
      ExprPtr node = parse_tuple(false, true, {}, true, false);
      expect_op(")");
      return node;
    }
    if (cur_op("[")) return parse_list();
    if (cur_op("{")) return parse_dict();
    fail(fmt::format("unexpected '{}'", describe_token(t)), line);
  }

  bool is_tuple_end(const std::vector<std::string>& extra) const {
    const Token& t = cur();
    if (t.type == Tok::VarEnd || t.type == Tok::BlockEnd || is_op(t, ")")) return true;
    if (t.type == Tok::Name) return std::find(extra.begin(), extra.end(), t.text) != extra.end();
    return false;
  }

  ExprPtr parse_tuple(bool simplified, bool with_condexpr, const std::vector<std::string>& extra_end,
                      bool explicit_parens, bool with_namespace) {
    int line = cur().line;
    std::vector<ExprPtr> args;
    bool is_tuple = false;
    while (true) {
      if (!args.empty()) expect_op(",");
      if (is_tuple_end(extra_end)) break;
      args.push_back(simplified ? parse_primary(with_namespace) : parse_expression(with_condexpr));
      if (cur_op(",")) {
        is_tuple = true;
      } else {
        break;
      }
      line = cur().line;
    }
    if (!is_tuple) {
      if (!args.empty()) return std::move(args[0]);
      if (!explicit_parens) fail(fmt::format("Expected an expression, got '{}'", describe_token(cur())));
    }
    auto node = std::make_unique<Expr>(ExprKind::Tuple, line);
    node->items = std::move(args);
    return node;
  }

  ExprPtr parse_list() {
    int line = expect_op("[").line;
    auto node = std::make_unique<Expr>(ExprKind::List, line);
    while (!cur_op("]")) {
      if (!node->items.empty()) expect_op(",");
      if (cur_op("]")) break;
      node->items.push_back(parse_expression(true));
    }
    expect_op("]");
    return node;
  }

  ExprPtr parse_dict() {
    int line = expect_op("{").line;
    auto node = std::make_unique<Expr>(ExprKind::Dict, line);
    while (!cur_op("}")) {
      if (!node->items.empty()) expect_op(",");
      if (cur_op("}")) break;
      node->items.push_back(parse_expression(true));
      expect_op(":");
      node->items.push_back(parse_expression(true));
    }
    expect_op("}");
    return node;
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (cur_op(".") || cur_op("[")) {
        node = parse_subscript(std::move(node));
      } else if (cur_op("(")) {
        node = parse_call(std::move(node));
      } else {
        break;
      }
    }
    return node;
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (cur_op("|")) {
        node = parse_filter(std::move(node), false);
      } else if (cur_name("is")) {
        node = parse_test(std::move(node));
      } else if (cur_op("(")) {
        node = parse_call(std::move(node));
      } else {
        break;
      }
    }
    return node;
  }

  ExprPtr parse_subscript(ExprPtr node) {
    Token t = next();
    if (t.text == ".") {
      Token attr = next();
      if (attr.type == Tok::Name) {
        auto e = std::make_unique<Expr>(ExprKind::GetAttr, t.line);
        e->a = std::move(node);
        e->name = attr.text;
        return e;
      }
      if (attr.type != Tok::Int) fail("expected name or number", attr.line);
      auto key = std::make_unique<Expr>(ExprKind::Const, attr.line);
      key->value = Value(attr.ival);
      auto e = std::make_unique<Expr>(ExprKind::GetItem, t.line);
      e->a = std::move(node);
      e->b = std::move(key);
      return e;
    }
    std::vector<ExprPtr> args;
    while (!cur_op("]")) {
      if (!args.empty()) expect_op(",");
      args.push_back(parse_subscribed());
    }
    expect_op("]");
    auto e = std::make_unique<Expr>(ExprKind::GetItem, t.line);
    e->a = std::move(node);
    if (args.size() == 1) {
      e->b = std::move(args[0]);
    } else {
      auto tup = std::make_unique<Expr>(ExprKind::Tuple, t.line);
      tup->items = std::move(args);
      e->b = std::move(tup);
    }
    return e;
  }

  ExprPtr parse_subscribed() {
    int line = cur().line;
    std::vector<ExprPtr> args;
    if (cur_op(":")) {
      next();
      args.emplace_back();
    } else {
      ExprPtr node = parse_expression(true);
      if (!cur_op(":")) return node;
      next();
      args.push_back(std::move(node));
    }
    if (cur_op(":")) {
      args.emplace_back();
    } else if (!cur_op("]") && !cur_op(",")) {
      args.push_back(parse_expression(true));
    } else {
      args.emplace_back();
    }
    if (cur_op(":")) {
      next();
      if (!cur_op("]") && !cur_op(",")) {
        args.push_back(parse_expression(true));
      } else {
        args.emplace_back();
      }
    } else {
      args.emplace_back();
    }
    auto node = std::make_unique<Expr>(ExprKind::Slice, line);
    node->items = std::move(args);
    return node;
  }

  void parse_call_args(Expr& node) {
    int line = expect_op("(").line;
    bool require_comma = false;
    auto ensure = [&](bool ok) {
      if (!ok) fail("invalid syntax for function call expression", line);
    };
    while (!cur_op(")")) {
      if (require_comma) {
        expect_op(",");
        if (cur_op(")")) break;
      }
      if (cur_op("*")) {
        ensure(!node.dyn_args && !node.dyn_kwargs);
        next();
        node.dyn_args = parse_expression(true);
      } else if (cur_op("**")) {
        ensure(!node.dyn_kwargs);
        next();
        node.dyn_kwargs = parse_expression(true);
      } else if (cur().type == Tok::Name && is_op(look(), "=")) {
        ensure(!node.dyn_kwargs);
        std::string key = next().text;
        next();
        node.kwargs.push_back(Keyword{key, parse_expression(true)});
      } else {
        ensure(!node.dyn_args && !node.dyn_kwargs && node.kwargs.empty());
        node.items.push_back(parse_expression(true));
      }
      require_comma = true;
    }
    expect_op(")");
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto node = std::make_unique<Expr>(ExprKind::Call, cur().line);
    node->a = std::move(callee);
    parse_call_args(*node);
    return node;
  }

  ExprPtr parse_filter(ExprPtr node, bool start_inline) {
    while (cur_op("|") || start_inline) {
      if (!start_inline) next();
      Token t = expect_name();
      std::string name = t.text;
      while (skip_op(".")) name += '.' + expect_name().text;  // a char: "." + string trips GCC 12's -Wrestrict
      auto f = std::make_unique<Expr>(ExprKind::Filter, t.line);
      f->a = std::move(node);
      f->name = name;
      if (cur_op("(")) parse_call_args(*f);
      node = std::move(f);
      start_inline = false;
    }
    return node;
  }

  ExprPtr parse_test(ExprPtr node) {
    Token is_tok = next();
    bool negated = skip_name("not");
    std::string name = expect_name().text;
    while (skip_op(".")) name += '.' + expect_name().text;
    auto test = std::make_unique<Expr>(ExprKind::Test, is_tok.line);
    test->a = std::move(node);
    test->name = name;
    const Token& t = cur();
    if (cur_op("(")) {
      parse_call_args(*test);
    } else if ((t.type == Tok::Name || t.type == Tok::String || t.type == Tok::Int || t.type == Tok::Float ||
                cur_op("[") || cur_op("{")) &&
               !cur_name("else") && !cur_name("or") && !cur_name("and")) {
      if (cur_name("is")) fail("You cannot chain multiple tests with is");
      ExprPtr arg = parse_primary(false);
      test->items.push_back(parse_postfix(std::move(arg)));
    }
    if (!negated) return test;
    auto n = std::make_unique<Expr>(ExprKind::Not, is_tok.line);
    n->a = std::move(test);
    return n;
  }
};

// Marks which of caller / varargs / kwargs a macro body reads (jinja2 decides the same way).
void scan_expr_names(const Expr* e, Node& node) {
  std::vector<const Expr*> stack{e};
  while (!stack.empty()) {
    const Expr* x = stack.back();
    stack.pop_back();
    if (!x) continue;
    if (x->kind == ExprKind::Name) {
      node.uses_caller |= x->name == "caller";
      node.uses_varargs |= x->name == "varargs";
      node.uses_kwargs |= x->name == "kwargs";
    }
    for (const Expr* c : {x->a.get(), x->b.get(), x->c.get(), x->dyn_args.get(), x->dyn_kwargs.get()}) stack.push_back(c);
    for (const auto& c : x->items) stack.push_back(c.get());
    for (const auto& k : x->kwargs) stack.push_back(k.value.get());
  }
}

void scan_body_names(const Body& body, Node& node) {
  for (const auto& n : body) {
    for (const auto& piece : n->output) scan_expr_names(piece.expr.get(), node);
    for (const Expr* e : {n->target.get(), n->expr.get(), n->filter.get()}) scan_expr_names(e, node);
    for (const auto& e : n->defaults) scan_expr_names(e.get(), node);
    for (const auto& e : n->values) scan_expr_names(e.get(), node);
    for (const auto& b : n->branches) {
      scan_expr_names(b.test.get(), node);
      scan_body_names(b.body, node);
    }
    scan_body_names(n->body, node);
    scan_body_names(n->else_body, node);
  }
}

void Parser::scan_names(const Body& body, Node& node) { scan_body_names(body, node); }

// After parsing: bounds each expression's depth and checks filter and test names. As in jinja2, an
// unknown name inside an {% if %} or an if-expression only fails when it is evaluated.
class Checker {
 public:
  void body(const Body& b, bool soft) {
    for (const auto& n : b) node(*n, soft);
  }

 private:
  [[noreturn]] void fail(int line, std::string msg) { throw ParseFail{line, std::move(msg)}; }

  void expr(Expr* root, bool soft) {
    struct Item {
      Expr* e;
      int depth;
      bool soft;
    };
    std::vector<Item> stack;
    if (root) stack.push_back({root, 1, soft});
    while (!stack.empty()) {
      Item it = stack.back();
      stack.pop_back();
      Expr* x = it.e;
      if (it.depth > kMaxExprDepth) fail(x->line, "expression nests too deeply");
      bool s = it.soft || x->kind == ExprKind::CondExpr;
      if (x->kind == ExprKind::Filter && !has_filter(x->name)) {
        if (!s) {
          if (is_jinja_filter(x->name)) fail(x->line, fmt::format("filter '{}' is not supported by this renderer", x->name));
          fail(x->line, fmt::format("No filter named '{}'.", x->name));
        }
        x->soft = true;
      }
      if (x->kind == ExprKind::Test && !has_test(x->name)) {
        if (!s) fail(x->line, fmt::format("No test named '{}'.", x->name));
        x->soft = true;
      }
      for (Expr* c : {x->a.get(), x->b.get(), x->c.get(), x->dyn_args.get(), x->dyn_kwargs.get()})
        if (c) stack.push_back({c, it.depth + 1, s});
      for (auto& c : x->items)
        if (c) stack.push_back({c.get(), it.depth + 1, s});
      for (auto& k : x->kwargs) stack.push_back({k.value.get(), it.depth + 1, s});
    }
  }

  void node(Node& n, bool soft) {
    for (auto& piece : n.output) expr(piece.expr.get(), soft);
    switch (n.kind) {
      case NodeKind::If:
        for (auto& b : n.branches) {
          expr(b.test.get(), true);
          body(b.body, true);
        }
        body(n.else_body, true);
        return;
      case NodeKind::For:
        expr(n.target.get(), soft);
        expr(n.expr.get(), soft);
        expr(n.filter.get(), false);
        body(n.body, false);
        body(n.else_body, false);
        return;
      case NodeKind::Set:
        expr(n.target.get(), soft);
        expr(n.expr.get(), soft);
        return;
      case NodeKind::CallBlock:
        expr(n.expr.get(), soft);
        break;
      case NodeKind::SetBlock:
      case NodeKind::FilterBlock:
        expr(n.expr.get(), false);
        break;
      case NodeKind::With:
        for (auto& e : n.targets) expr(e.get(), soft);
        for (auto& e : n.values) expr(e.get(), soft);
        break;
      default: break;
    }
    for (auto& e : n.defaults) expr(e.get(), false);
    body(n.body, false);
  }
};

}  // namespace

std::shared_ptr<const TemplateAst> parse_template(std::string_view source, const std::string& origin) {
  auto ast = std::make_shared<TemplateAst>();
  ast->origin = origin;
  if (!utf8_valid(source)) pcm::fail("{}: the template is not valid UTF-8", origin);
  try {
    Parser parser(tokenize(source));
    ast->body = parser.parse();
    Checker().body(ast->body, false);
  } catch (const SyntaxError& e) {
    pcm::fail("{}:{}: {}", origin, e.line, e.message);
  } catch (const ParseFail& e) {
    pcm::fail("{}:{}: {}", origin, e.line, e.message);
  }
  return ast;
}

}  // namespace pcm::jinja
