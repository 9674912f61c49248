// Syntax tree of a parsed Jinja template (mirrors jinja2.nodes, reduced to the chat-template subset).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace pcm::jinja {

enum class ExprKind {
  Const,     // value
  Name,      // name
  List,      // items
  Tuple,     // items
  Dict,      // items: key0, value0, key1, value1, ...
  GetAttr,   // a.name
  GetItem,   // a[b]
  Slice,     // items[0]:items[1]:items[2] (each may be null); only as GetItem's key
  Call,      // a(items..., kwargs..., *dyn_args, **dyn_kwargs)
  Filter,    // a | name(items..., kwargs...); a is null inside {% filter %} / {% set %} blocks
  Test,      // a is name(items..., kwargs...)
  Neg,       // -a
  Pos,       // +a
  Not,       // not a
  And,       // a and b
  Or,        // a or b
  BinOp,     // a <name> b, name in + - * / // % **
  Compare,   // a ops[0] items[0] ops[1] items[1] ...
  Concat,    // items[0] ~ items[1] ~ ...
  CondExpr,  // b if a else c (c may be null)
  NSRef,     // name.attr as an assignment target
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Keyword {
  std::string name;
  ExprPtr value;
};

struct Expr {
  ExprKind kind;
  int line = 0;
  Value value;
  std::string name;
  std::string attr;
  ExprPtr a, b, c;
  std::vector<ExprPtr> items;
  std::vector<Keyword> kwargs;
  ExprPtr dyn_args, dyn_kwargs;
  std::vector<std::string> ops;
  bool soft = false;  // Filter/Test: an unknown name is an error only when evaluated (inside if / if-expressions)

  Expr(ExprKind k, int l) : kind(k), line(l) {}
};

enum class NodeKind { Output, For, If, Set, SetBlock, Macro, CallBlock, FilterBlock, With, Break, Continue, Scope };

struct Node;
using NodePtr = std::unique_ptr<Node>;
using Body = std::vector<NodePtr>;

struct OutputPiece {
  std::string text;  // used when expr is null
  ExprPtr expr;
};

struct IfBranch {
  ExprPtr test;
  Body body;
};

struct Node {
  NodeKind kind;
  int line = 0;
  std::vector<OutputPiece> output;      // Output
  ExprPtr target;                       // For, Set, SetBlock
  ExprPtr expr;                         // For: iterable; Set: value; CallBlock: the call; Filter/SetBlock: filter chain
  ExprPtr filter;                       // For: `if` filter
  bool recursive = false;               // For
  Body body;                            // For, SetBlock, Macro, CallBlock, FilterBlock, With, Scope
  Body else_body;                       // For, If
  std::vector<IfBranch> branches;       // If
  std::string name;                     // Macro
  std::vector<std::string> params;      // Macro, CallBlock
  std::vector<ExprPtr> defaults;        // Macro, CallBlock: defaults of the last params
  std::vector<ExprPtr> targets, values; // With
  bool uses_caller = false, uses_varargs = false, uses_kwargs = false;  // Macro, CallBlock

  Node(NodeKind k, int l) : kind(k), line(l) {}
};

struct TemplateAst {
  std::string origin;
  Body body;
};

}  // namespace pcm::jinja
