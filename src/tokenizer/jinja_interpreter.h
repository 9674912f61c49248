// Tree-walking Jinja interpreter with jinja2's runtime semantics as transformers configures them
// (ImmutableSandboxedEnvironment, default Undefined, loopcontrols): scoping (a for-loop iteration,
// macro, with, set/filter block each get their own scope; if does not), Python operators, sandboxed
// attribute access, and bounded work (steps, output size, call depth, range size).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/jinja_ast.h"
#include "tokenizer/jinja_value.h"

namespace pcm::jinja {

struct Limits {
  int64_t max_steps = 20'000'000;     // statements, loop iterations, filter items
  size_t max_output = 64u << 20;      // bytes of any one rendered string or buffer
  size_t max_items = 4u << 20;        // elements of any one list built by the template
  int max_call_depth = 48;            // nested macro / recursive-loop calls
  int64_t max_range = 100'000;        // jinja2's sandbox MAX_RANGE
};

struct Scope {
  std::shared_ptr<Scope> parent;
  std::vector<std::pair<std::string, Value>> vars;
  const Value* find(std::string_view name) const;
  void set(const std::string& name, Value v);
};
using ScopePtr = std::shared_ptr<Scope>;

// raise_exception(msg) from a template.
class RaisedError : public TemplateError {
 public:
  using TemplateError::TemplateError;
};

class Interpreter {
 public:
  Interpreter(std::shared_ptr<const TemplateAst> ast, Limits limits);
  ~Interpreter();
  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  // Renders with `context` as the template's variables. Errors are pcm::Error "<origin>:<line>: ...".
  std::string render(const DictData& context);

  // For built-ins:
  Value call(const Value& fn, const CallArgs& args);
  Value getattr(const Value& obj, const std::string& name);
  Value getitem(const Value& obj, const Value& key);
  std::vector<Value> iterate(const Value& v);  // Python iter(); undefined iterates as empty
  void step(int64_t n = 1);
  void check_size(size_t bytes) const;
  void check_items(size_t count) const;
  const Limits& limits() const { return limits_; }
  int line() const { return line_; }

  // Used by macro / recursive-loop callables.
  std::string call_macro(const Node& node, const ScopePtr& closure, const std::string& name, const CallArgs& args,
                         bool is_caller);
  std::string render_loop(const Node& node, const ScopePtr& scope, const Value& iterable, int64_t depth0);

 private:
  enum class Flow { Normal, Break, Continue };

  Flow exec_body(const Body& body, const ScopePtr& scope, std::string& out);
  Flow exec(const Node& node, const ScopePtr& scope, std::string& out);
  void exec_for(const Node& node, const ScopePtr& scope, std::string& out, const Value& iterable, int64_t depth0);
  void assign(const Expr& target, const Value& value, const ScopePtr& scope);
  Value eval(const Expr& e, const ScopePtr& scope);
  Value eval_inner(const Expr& e, const ScopePtr& scope);
  Value eval_call(const Expr& e, const ScopePtr& scope);
  Value eval_filter(const Expr& e, const ScopePtr& scope);
  Value eval_test(const Expr& e, const ScopePtr& scope);
  Value eval_slice(const Value& obj, const Expr& slice, const ScopePtr& scope);
  Value eval_compare(const Expr& e, const ScopePtr& scope);
  CallArgs eval_args(const Expr& e, const ScopePtr& scope);
  ScopePtr child(const ScopePtr& parent);
  void append(std::string& out, std::string_view text);

  std::shared_ptr<const TemplateAst> ast_;
  Limits limits_;
  int line_ = 1;
  int64_t steps_ = 0;
  int call_depth_ = 0;
  const std::string* block_value_ = nullptr;  // content of the enclosing {% filter %} / {% set %} block
  std::vector<ScopePtr> captured_;            // scopes held by closures: cleared after render (breaks cycles)
  std::vector<std::shared_ptr<NamespaceData>> namespaces_;
  std::vector<std::shared_ptr<LoopData>> loops_;

 public:
  // namespace() objects may reference themselves; they are emptied after rendering.
  void track_namespace(const std::shared_ptr<NamespaceData>& ns) { namespaces_.push_back(ns); }
};

// Python binary operators (+ - * / // % **) and `in`, as jinja2 evaluates them.
Value binary_op(Interpreter& in, const std::string& op, const Value& a, const Value& b);
bool contains(const Value& container, const Value& item);

}  // namespace pcm::jinja
