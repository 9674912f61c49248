#include "tokenizer/jinja_interpreter.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "tokenizer/jinja_builtins.h"
#include "tokenizer/jinja_strings.h"
#include "util/error.h"

namespace pcm::jinja {

const Value* Scope::find(std::string_view name) const {
  for (const auto& [k, v] : vars)
    if (k == name) return &v;
  return nullptr;
}

void Scope::set(const std::string& name, Value v) {
  for (auto& [k, old] : vars) {
    if (k == name) {
      old = std::move(v);
      return;
    }
  }
  vars.emplace_back(name, std::move(v));
}

namespace {

Value lookup(const ScopePtr& scope, const std::string& name) {
  for (const Scope* s = scope.get(); s; s = s->parent.get())
    if (const Value* v = s->find(name)) return *v;
  return Value::undefined(fmt::format("'{}' is undefined", name));
}

// The text jinja2 uses for an object in "has no attribute" messages (object_type_repr).
std::string object_type_repr(const Value& v) {
  if (v.is_none()) return "None";
  if (v.is_namespace()) return "jinja2.utils.Namespace object";
  if (v.type() == Type::Loop) return "jinja2.runtime.LoopContext object";
  return v.type_name() + " object";
}

Value no_attribute(const Value& obj, const std::string& name) {
  return Value::undefined(fmt::format("{} has no attribute {}", py_repr_string(object_type_repr(obj)), py_repr_string(name)));
}

Value no_element(const Value& obj, const Value& key) {
  if (key.is_string()) return no_attribute(obj, key.str());
  return Value::undefined(fmt::format("{} has no element {}", object_type_repr(obj), key.repr()));
}

bool is_dunder(const std::string& name) { return name.size() >= 2 && name[0] == '_' && name[1] == '_'; }

Value unsafe(const Value& obj, const std::string& name) {
  return Value::undefined(fmt::format("access to attribute {} of {} object is unsafe.", py_repr_string(name),
                                      py_repr_string(obj.type_name())));
}

class MacroCallable : public Callable {
 public:
  MacroCallable(const Node* node, ScopePtr closure, std::string name, bool is_caller)
      : node_(node), closure_(std::move(closure)), name_(std::move(name)), is_caller_(is_caller) {}
  Value call(Interpreter& in, const CallArgs& args) const override {
    return Value(in.call_macro(*node_, closure_, name_, args, is_caller_));
  }
  std::string repr() const override { return "<Macro '" + name_ + "'>"; }

 private:
  const Node* node_;
  ScopePtr closure_;
  std::string name_;
  bool is_caller_;
};

class LoopRecurse : public Callable {
 public:
  LoopRecurse(const Node* node, ScopePtr scope, int64_t depth0) : node_(node), scope_(std::move(scope)), depth0_(depth0) {}
  Value call(Interpreter& in, const CallArgs& args) const override {
    if (args.args.size() != 1 || !args.kwargs.empty()) throw_error("loop() takes exactly one argument");
    return Value(in.render_loop(*node_, scope_, args.args[0], depth0_ + 1));
  }
  std::string repr() const override { return "<bound method LoopContext.__call__>"; }

 private:
  const Node* node_;
  ScopePtr scope_;
  int64_t depth0_;
};

class LoopMethod : public Callable {
 public:
  LoopMethod(std::shared_ptr<LoopData> loop, bool cycle) : loop_(std::move(loop)), cycle_(cycle) {}
  Value call(Interpreter&, const CallArgs& args) const override {
    if (!args.kwargs.empty()) throw_error(fmt::format("loop.{}() takes no keyword arguments", cycle_ ? "cycle" : "changed"));
    if (cycle_) {
      if (args.args.empty()) throw_error("no items for cycling given");
      return args.args[static_cast<size_t>(loop_->index0) % args.args.size()];
    }
    bool differs = !loop_->last_changed || loop_->last_changed->size() != args.args.size();
    if (!differs) {
      for (size_t k = 0; k < args.args.size(); ++k)
        if (!values_equal((*loop_->last_changed)[k], args.args[k])) differs = true;
    }
    if (differs) loop_->last_changed = args.args;
    return Value(differs);
  }
  std::string repr() const override { return cycle_ ? "<bound method LoopContext.cycle>" : "<bound method LoopContext.changed>"; }

 private:
  std::shared_ptr<LoopData> loop_;
  bool cycle_;
};

Value loop_attribute(const Value& v, const std::string& name) {
  const LoopData& l = v.loop();
  if (name == "index") return Value(l.index0 + 1);
  if (name == "index0") return Value(l.index0);
  if (name == "revindex") return Value(l.length - l.index0);
  if (name == "revindex0") return Value(l.length - l.index0 - 1);
  if (name == "first") return Value(l.index0 == 0);
  if (name == "last") return Value(l.index0 == l.length - 1);
  if (name == "length") return Value(l.length);
  if (name == "depth") return Value(l.depth0 + 1);
  if (name == "depth0") return Value(l.depth0);
  if (name == "previtem")
    return l.index0 > 0 ? (*l.items)[l.index0 - 1] : Value::undefined("there is no previous item");
  if (name == "nextitem")
    return l.index0 + 1 < l.length ? (*l.items)[l.index0 + 1] : Value::undefined("there is no next item");
  auto data = std::static_pointer_cast<LoopData>(v.ptr());
  if (name == "cycle") return Value::callable(std::make_shared<LoopMethod>(data, true));
  if (name == "changed") return Value::callable(std::make_shared<LoopMethod>(data, false));
  return no_attribute(v, name);
}

bool compare_op(const std::string& op, const Value& l, const Value& r) {
  if (op == "==") return values_equal(l, r);
  if (op == "!=") return !values_equal(l, r);
  if (op == "in") return contains(r, l);
  if (op == "notin") return !contains(r, l);
  if (l.is_number() && r.is_number() && (l.is_float() || r.is_float())) {
    double a = l.as_double(), b = r.as_double();
    if (op == "<") return a < b;
    if (op == ">") return a > b;
    if (op == "<=") return a <= b;
    return a >= b;
  }
  if (l.is_undefined()) throw_error(l.undefined_message());
  if (r.is_undefined()) throw_error(r.undefined_message());
  auto type_check = [&](const char* sym) {
    bool ok = (l.is_number() && r.is_number()) || (l.is_string() && r.is_string()) ||
              (l.is_list() && r.is_list() && l.is_tuple() == r.is_tuple());
    if (!ok)
      throw_error(fmt::format("'{}' not supported between instances of '{}' and '{}'", sym, l.type_name(), r.type_name()));
  };
  if (op == "<") {
    type_check("<");
    return values_less(l, r);
  }
  if (op == ">") {
    type_check(">");
    return values_less(r, l);
  }
  if (op == "<=") {
    type_check("<=");
    return !values_less(r, l);
  }
  type_check(">=");
  return !values_less(l, r);
}

// Takes the result by pointer: as a second by-value argument it could be read before the overflow
// builtin (an argument of the same call) writes it — argument evaluation order is unspecified.
int64_t checked(bool overflow, const int64_t* v) {
  if (overflow) throw_error("integer overflow (Python would switch to big integers; not supported)");
  return *v;
}

double py_float_mod(double x, double y) {
  double mod = std::fmod(x, y);
  if (mod != 0.0) {
    if ((y < 0) != (mod < 0)) mod += y;
  } else {
    mod = std::copysign(0.0, y);
  }
  return mod;
}

double py_float_floordiv(double x, double y) {
  double mod = std::fmod(x, y);
  double div = (x - mod) / y;
  if (mod != 0.0 && ((y < 0) != (mod < 0))) div -= 1.0;
  if (div != 0.0) {
    double f = std::floor(div);
    if (div - f > 0.5) f += 1.0;
    return f;
  }
  return std::copysign(0.0, x / y);
}

Value repeat(Interpreter& in, const Value& seq, int64_t count) {
  if (count < 0) count = 0;
  if (seq.is_string()) {
    in.check_size(seq.str().size() * static_cast<size_t>(std::min<int64_t>(count, 1 << 30)));
    std::string out;
    out.reserve(seq.str().size() * static_cast<size_t>(count));
    for (int64_t k = 0; k < count; ++k) out += seq.str();
    return Value(std::move(out));
  }
  in.check_items(seq.items().size() * static_cast<size_t>(std::min<int64_t>(count, 1 << 30)));
  std::vector<Value> out;
  for (int64_t k = 0; k < count; ++k) out.insert(out.end(), seq.items().begin(), seq.items().end());
  return seq.is_tuple() ? Value::tuple(std::move(out)) : Value::list(std::move(out));
}

}  // namespace

Value binary_op(Interpreter& in, const std::string& op, const Value& a, const Value& b) {
  if (a.is_undefined()) throw_error(a.undefined_message());
  if (b.is_undefined()) throw_error(b.undefined_message());
  bool nums = a.is_number() && b.is_number();
  bool ints = nums && !a.is_float() && !b.is_float();
  auto unsupported = [&]() -> Value {
    throw_error(fmt::format("unsupported operand type(s) for {}: '{}' and '{}'", op, a.type_name(), b.type_name()));
  };
  int64_t r = 0;
  if (op == "+") {
    if (ints) return Value(checked(__builtin_add_overflow(a.as_int(), b.as_int(), &r), &r));
    if (nums) return Value(a.as_double() + b.as_double());
    if (a.is_string() && b.is_string()) {
      in.check_size(a.str().size() + b.str().size());
      return Value(a.str() + b.str());
    }
    if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
      in.check_items(a.items().size() + b.items().size());
      std::vector<Value> items = a.items();
      items.insert(items.end(), b.items().begin(), b.items().end());
      return a.is_tuple() ? Value::tuple(std::move(items)) : Value::list(std::move(items));
    }
    if (a.is_string()) throw_error(fmt::format("can only concatenate str (not \"{}\") to str", b.type_name()));
    if (a.is_list()) throw_error(fmt::format("can only concatenate {} (not \"{}\") to {}", a.type_name(), b.type_name(), a.type_name()));
    return unsupported();
  }
  if (op == "-") {
    if (ints) return Value(checked(__builtin_sub_overflow(a.as_int(), b.as_int(), &r), &r));
    if (nums) return Value(a.as_double() - b.as_double());
    return unsupported();
  }
  if (op == "*") {
    if (ints) return Value(checked(__builtin_mul_overflow(a.as_int(), b.as_int(), &r), &r));
    if (nums) return Value(a.as_double() * b.as_double());
    bool a_int = a.is_int() || a.is_bool(), b_int = b.is_int() || b.is_bool();
    if ((a.is_string() || a.is_list()) && b_int) return repeat(in, a, b.as_int());
    if ((b.is_string() || b.is_list()) && a_int) return repeat(in, b, a.as_int());
    if (a.is_string() || a.is_list() || b.is_string() || b.is_list())
      throw_error(fmt::format("can't multiply sequence by non-int of type '{}'", (a.is_string() || a.is_list()) ? b.type_name() : a.type_name()));
    return unsupported();
  }
  if (op == "/") {
    if (!nums) return unsupported();
    if (b.as_double() == 0.0) throw_error("division by zero");
    return Value(a.as_double() / b.as_double());
  }
  if (op == "//") {
    if (!nums) return unsupported();
    if (ints) {
      int64_t x = a.as_int(), y = b.as_int();
      if (y == 0) throw_error("integer division or modulo by zero");
      if (x == INT64_MIN && y == -1) checked(true, 0);
      int64_t q = x / y;
      if ((x % y != 0) && ((x < 0) != (y < 0))) --q;
      return Value(q);
    }
    if (b.as_double() == 0.0) throw_error("float floor division by zero");
    return Value(py_float_floordiv(a.as_double(), b.as_double()));
  }
  if (op == "%") {
    if (a.is_string()) return Value(percent_format(in, a.str(), b));
    if (!nums) return unsupported();
    if (ints) {
      int64_t x = a.as_int(), y = b.as_int();
      if (y == 0) throw_error("integer modulo by zero");
      if (y == -1) return Value(int64_t{0});
      int64_t m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) m += y;
      return Value(m);
    }
    if (b.as_double() == 0.0) throw_error("float modulo by zero");
    return Value(py_float_mod(a.as_double(), b.as_double()));
  }
  if (op == "**") {
    if (!nums) return unsupported();
    if (ints && b.as_int() >= 0) {
      int64_t base = a.as_int(), e = b.as_int(), acc = 1;
      while (e > 0) {
        if (e & 1) acc = checked(__builtin_mul_overflow(acc, base, &r), &r);
        e >>= 1;
        if (e > 0) base = checked(__builtin_mul_overflow(base, base, &r), &r);
      }
      return Value(acc);
    }
    double x = a.as_double(), y = b.as_double();
    if (x == 0.0 && y < 0) throw_error("0.0 cannot be raised to a negative power");
    if (x < 0 && std::floor(y) != y) throw_error("complex results of ** are not supported");
    return Value(std::pow(x, y));
  }
  throw_error(fmt::format("unknown operator {}", op));
}

bool contains(const Value& container, const Value& item) {
  switch (container.type()) {
    case Type::String:
      if (!item.is_string())
        throw_error(fmt::format("'in <string>' requires string as left operand, not {}", item.type_name()));
      return container.str().find(item.str()) != std::string::npos;
    case Type::List:
      for (const auto& v : container.items())
        if (values_equal(v, item)) return true;
      return false;
    case Type::Dict:
      if (item.is_list() && !item.is_tuple()) throw_error("unhashable type: 'list'");
      if (item.is_dict()) throw_error("unhashable type: 'dict'");
      return item.is_string() && container.dict().find(item.str()) != nullptr;
    case Type::Undefined: return false;
    default: throw_error(fmt::format("argument of type '{}' is not iterable", container.type_name()));
  }
}

Interpreter::Interpreter(std::shared_ptr<const TemplateAst> ast, Limits limits) : ast_(std::move(ast)), limits_(limits) {}

Interpreter::~Interpreter() {
  for (auto& s : captured_) s->vars.clear();
  for (auto& n : namespaces_) n->attrs.items.clear();
  for (auto& l : loops_) {
    l->recurse.reset();
    l->items.reset();
    l->last_changed.reset();
  }
}

ScopePtr Interpreter::child(const ScopePtr& parent) {
  auto s = std::make_shared<Scope>();
  s->parent = parent;
  return s;
}

void Interpreter::step(int64_t n) {
  steps_ += n;
  if (steps_ > limits_.max_steps)
    throw_error(fmt::format("the template exceeded {} evaluation steps (an endless or very long loop?)", limits_.max_steps));
}

void Interpreter::check_size(size_t bytes) const {
  if (bytes > limits_.max_output) throw_error(fmt::format("the template produced a string longer than {} bytes", limits_.max_output));
}

void Interpreter::check_items(size_t count) const {
  if (count > limits_.max_items) throw_error(fmt::format("the template built a list longer than {} items", limits_.max_items));
}

void Interpreter::append(std::string& out, std::string_view text) {
  out += text;
  check_size(out.size());
}

std::string Interpreter::render(const DictData& context) {
  auto globals = std::make_shared<Scope>();
  DictData g;
  add_globals(g);
  for (auto& [k, v] : g.items) globals->vars.emplace_back(k, v);
  auto root = child(globals);
  for (const auto& [k, v] : context.items) root->set(k, v);
  std::string out;
  try {
    exec_body(ast_->body, root, out);
  } catch (const TemplateError& e) {
    pcm::fail("{}:{}: {}", ast_->origin, line_, e.message());
  }
  return out;
}

Interpreter::Flow Interpreter::exec_body(const Body& body, const ScopePtr& scope, std::string& out) {
  for (const auto& node : body) {
    Flow f = exec(*node, scope, out);
    if (f != Flow::Normal) return f;
  }
  return Flow::Normal;
}

Interpreter::Flow Interpreter::exec(const Node& node, const ScopePtr& scope, std::string& out) {
  step();
  line_ = node.line;
  switch (node.kind) {
    case NodeKind::Output:
      for (const auto& piece : node.output) {
        if (piece.expr) {
          append(out, eval(*piece.expr, scope).to_str());
        } else {
          append(out, piece.text);
        }
      }
      return Flow::Normal;
    case NodeKind::If:
      for (const auto& branch : node.branches) {
        if (eval(*branch.test, scope).truthy()) return exec_body(branch.body, scope, out);
      }
      return exec_body(node.else_body, scope, out);
    case NodeKind::For: {
      Value iterable = eval(*node.expr, scope);
      exec_for(node, scope, out, iterable, 0);
      return Flow::Normal;
    }
    case NodeKind::Set:
      assign(*node.target, eval(*node.expr, scope), scope);
      return Flow::Normal;
    case NodeKind::SetBlock:
    case NodeKind::FilterBlock: {
      std::string buf;
      exec_body(node.body, child(scope), buf);
      Value v(buf);
      if (node.expr) {
        const std::string* saved = block_value_;
        block_value_ = &buf;
        v = eval(*node.expr, scope);
        block_value_ = saved;
      }
      if (node.kind == NodeKind::SetBlock) {
        assign(*node.target, v, scope);
      } else {
        append(out, v.to_str());
      }
      return Flow::Normal;
    }
    case NodeKind::Macro:
      captured_.push_back(scope);
      scope->set(node.name, Value::callable(std::make_shared<MacroCallable>(&node, scope, node.name, false)));
      return Flow::Normal;
    case NodeKind::CallBlock: {
      captured_.push_back(scope);
      Value caller = Value::callable(std::make_shared<MacroCallable>(&node, scope, "caller", true));
      Value fn = eval(*node.expr->a, scope);
      CallArgs args = eval_args(*node.expr, scope);
      args.kwargs.emplace_back("caller", caller);
      line_ = node.line;
      append(out, call(fn, args).to_str());
      return Flow::Normal;
    }
    case NodeKind::With: {
      auto inner = child(scope);
      for (size_t k = 0; k < node.targets.size(); ++k) assign(*node.targets[k], eval(*node.values[k], scope), inner);
      exec_body(node.body, inner, out);
      return Flow::Normal;
    }
    case NodeKind::Scope:
      exec_body(node.body, child(scope), out);
      return Flow::Normal;
    case NodeKind::Break: return Flow::Break;
    case NodeKind::Continue: return Flow::Continue;
  }
  return Flow::Normal;
}

std::vector<Value> Interpreter::iterate(const Value& v) {
  switch (v.type()) {
    case Type::List: return v.items();
    case Type::Dict: {
      std::vector<Value> keys;
      keys.reserve(v.dict().items.size());
      for (const auto& kv : v.dict().items) keys.emplace_back(kv.first);
      return keys;
    }
    case Type::String: {
      std::vector<Value> chars;
      for (char32_t c : utf8_decode(v.str())) {
        std::string s;
        utf8_append(s, c);
        chars.emplace_back(std::move(s));
      }
      return chars;
    }
    case Type::Undefined: return {};
    default: throw_error(fmt::format("'{}' object is not iterable", v.type_name()));
  }
}

void Interpreter::exec_for(const Node& node, const ScopePtr& scope, std::string& out, const Value& iterable, int64_t depth0) {
  std::vector<Value> items = iterate(iterable);
  if (node.filter) {
    std::vector<Value> kept;
    for (auto& item : items) {
      step();
      auto s = child(scope);
      assign(*node.target, item, s);
      if (eval(*node.filter, s).truthy()) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    exec_body(node.else_body, child(scope), out);
    return;
  }
  auto loop = std::make_shared<LoopData>();
  loop->length = static_cast<int64_t>(items.size());
  loop->depth0 = depth0;
  loop->items = std::make_shared<const std::vector<Value>>(std::move(items));
  if (node.recursive) {
    captured_.push_back(scope);
    loop->recurse = std::make_shared<LoopRecurse>(&node, scope, depth0);
  }
  loops_.push_back(loop);
  Value loop_value = Value::loop(loop);
  const auto& list = *loop->items;
  for (size_t k = 0; k < list.size(); ++k) {
    step();  // an empty body runs no statements: nested loops must still count
    loop->index0 = static_cast<int64_t>(k);
    auto s = child(scope);
    s->vars.emplace_back("loop", loop_value);
    assign(*node.target, list[k], s);
    if (exec_body(node.body, s, out) == Flow::Break) break;
  }
  // Nothing kept the loop (the usual case): stop tracking it, or nested loops hold every inner list until
  // the render ends (range(100000) inside range(100000) grew to 1.3 GB before the step limit).
  loop_value = Value();
  if (loop.use_count() == 2 && loops_.back() == loop) loops_.pop_back();
}

std::string Interpreter::render_loop(const Node& node, const ScopePtr& scope, const Value& iterable, int64_t depth0) {
  if (++call_depth_ > limits_.max_call_depth)
    throw_error(fmt::format("recursive loop nests deeper than {} levels", limits_.max_call_depth));
  std::string out;
  exec_for(node, scope, out, iterable, depth0);
  --call_depth_;
  return out;
}

std::string Interpreter::call_macro(const Node& node, const ScopePtr& closure, const std::string& name,
                                    const CallArgs& args, bool is_caller) {
  if (++call_depth_ > limits_.max_call_depth)
    throw_error(fmt::format("macro calls nest deeper than {} levels", limits_.max_call_depth));
  int saved_line = line_;
  auto scope = child(closure);
  const auto& params = node.params;
  size_t nparams = params.size();
  size_t npos = std::min(args.args.size(), nparams);
  std::vector<const Value*> vals(nparams, nullptr);
  std::vector<bool> used(args.kwargs.size(), false);
  for (size_t k = 0; k < npos; ++k) vals[k] = &args.args[k];
  auto take_kwarg = [&](const std::string& key) -> const Value* {
    for (size_t k = 0; k < args.kwargs.size(); ++k) {
      if (!used[k] && args.kwargs[k].first == key) {
        used[k] = true;
        return &args.kwargs[k].second;
      }
    }
    return nullptr;
  };
  bool found_caller = false;
  if (npos != nparams) {
    for (size_t k = npos; k < nparams; ++k) {
      vals[k] = take_kwarg(params[k]);
      if (params[k] == "caller") found_caller = true;
    }
  } else {
    found_caller = std::find(params.begin(), params.end(), "caller") != params.end();
  }
  if (node.uses_caller && !found_caller) {
    const Value* c = take_kwarg("caller");
    scope->set("caller", c ? *c : Value::undefined("No caller defined"));
  }
  if (node.uses_kwargs) {
    DictData extra;
    for (size_t k = 0; k < args.kwargs.size(); ++k)
      if (!used[k]) extra.set(args.kwargs[k].first, args.kwargs[k].second);
    scope->set("kwargs", Value::dict(std::move(extra)));
  } else {
    for (size_t k = 0; k < args.kwargs.size(); ++k) {
      if (used[k]) continue;
      if (args.kwargs[k].first == "caller")
        throw_error(fmt::format("macro '{}' was invoked with two values for the special caller argument", name));
      throw_error(fmt::format("macro '{}' takes no keyword argument '{}'", name, args.kwargs[k].first));
    }
  }
  if (node.uses_varargs) {
    std::vector<Value> rest;
    for (size_t k = nparams; k < args.args.size(); ++k) rest.push_back(args.args[k]);
    scope->set("varargs", Value::tuple(std::move(rest)));
  } else if (args.args.size() > nparams) {
    throw_error(fmt::format("macro '{}' takes not more than {} argument(s)", name, nparams));
  }
  size_t first_default = nparams - node.defaults.size();
  for (size_t k = 0; k < nparams; ++k) {
    if (vals[k]) {
      scope->set(params[k], *vals[k]);
    } else if (k >= first_default) {
      scope->set(params[k], eval(*node.defaults[k - first_default], scope));
    } else {
      scope->set(params[k], Value::undefined(fmt::format("parameter '{}' was not provided", params[k])));
    }
  }
  (void)is_caller;
  std::string out;
  exec_body(node.body, scope, out);
  --call_depth_;
  line_ = saved_line;
  return out;
}

void Interpreter::assign(const Expr& target, const Value& value, const ScopePtr& scope) {
  if (target.kind == ExprKind::Name) {
    scope->set(target.name, value);
    return;
  }
  if (target.kind == ExprKind::NSRef) {
    Value ns = lookup(scope, target.name);
    if (!ns.is_namespace()) throw_error("cannot assign attribute on non-namespace object");
    ns.ns().attrs.set(target.attr, value);
    return;
  }
  // Tuple unpacking.
  std::vector<Value> seq;
  if (value.is_list() || value.is_dict() || value.is_string()) {
    seq = iterate(value);
  } else {
    throw_error(fmt::format("cannot unpack non-iterable {} object", value.type_name()));
  }
  size_t n = target.items.size();
  if (seq.size() > n) throw_error(fmt::format("too many values to unpack (expected {})", n));
  if (seq.size() < n) throw_error(fmt::format("not enough values to unpack (expected {}, got {})", n, seq.size()));
  for (size_t k = 0; k < n; ++k) assign(*target.items[k], seq[k], scope);
}

Value Interpreter::call(const Value& fn, const CallArgs& args) {
  step();
  if (fn.is_undefined()) throw_error(fn.undefined_message());
  if (fn.type() == Type::Callable) return fn.fn().call(*this, args);
  if (fn.type() == Type::Loop) {
    if (!fn.loop().recurse) throw_error("Tried to call non recursive loop. Maybe you forgot the 'recursive' modifier.");
    return fn.loop().recurse->call(*this, args);
  }
  throw_error(fmt::format("'{}' object is not callable", fn.type_name()));
}

Value Interpreter::getattr(const Value& obj, const std::string& name) {
  switch (obj.type()) {
    case Type::Undefined: throw_error(obj.undefined_message());
    case Type::Dict: {
      if (is_dunder(name)) return unsafe(obj, name);
      if (auto m = method_attribute(obj, name)) return *m;
      if (const Value* v = obj.dict().find(name)) return *v;
      return no_attribute(obj, name);
    }
    case Type::Namespace: {
      if (const Value* v = obj.ns().attrs.find(name)) return *v;
      return no_attribute(obj, name);
    }
    case Type::Loop: return loop_attribute(obj, name);
    case Type::String:
    case Type::List: {
      if (is_dunder(name)) return unsafe(obj, name);
      if (auto m = method_attribute(obj, name)) return *m;
      if (obj.is_list()) {
        const auto& fields = obj.list().fields;
        for (size_t k = 0; k < fields.size(); ++k)
          if (fields[k] == name) return obj.items()[k];
      }
      return no_attribute(obj, name);
    }
    default: return no_attribute(obj, name);
  }
}

Value Interpreter::getitem(const Value& obj, const Value& key) {
  if (obj.is_undefined()) throw_error(obj.undefined_message());
  bool int_key = key.is_int() || key.is_bool();
  switch (obj.type()) {
    case Type::Dict:
      if (key.is_string()) {
        if (const Value* v = obj.dict().find(key.str())) return *v;
        if (is_dunder(key.str())) return unsafe(obj, key.str());
        if (auto m = method_attribute(obj, key.str())) return *m;
      }
      return no_element(obj, key);
    case Type::List:
    case Type::String: {
      if (int_key) {
        int64_t i = key.as_int();
        if (obj.is_list()) {
          auto n = static_cast<int64_t>(obj.items().size());
          if (i < 0) i += n;
          if (i >= 0 && i < n) return obj.items()[static_cast<size_t>(i)];
        } else {
          std::u32string u = utf8_decode(obj.str());
          auto n = static_cast<int64_t>(u.size());
          if (i < 0) i += n;
          if (i >= 0 && i < n) {
            std::string s;
            utf8_append(s, u[static_cast<size_t>(i)]);
            return Value(std::move(s));
          }
        }
        return no_element(obj, key);
      }
      if (key.is_string()) return getattr(obj, key.str());
      return no_element(obj, key);
    }
    case Type::Namespace:
    case Type::Loop:
      if (key.is_string()) return getattr(obj, key.str());
      return no_element(obj, key);
    default: return no_element(obj, key);
  }
}

Value Interpreter::eval(const Expr& e, const ScopePtr& scope) {
  int saved = line_;
  line_ = e.line;
  Value v = eval_inner(e, scope);
  line_ = saved;
  return v;
}

CallArgs Interpreter::eval_args(const Expr& e, const ScopePtr& scope) {
  CallArgs args;
  for (const auto& a : e.items) args.args.push_back(eval(*a, scope));
  if (e.dyn_args) {
    Value extra = eval(*e.dyn_args, scope);
    for (auto& v : iterate(extra)) args.args.push_back(std::move(v));
  }
  for (const auto& kw : e.kwargs) args.kwargs.emplace_back(kw.name, eval(*kw.value, scope));
  if (e.dyn_kwargs) {
    Value extra = eval(*e.dyn_kwargs, scope);
    if (!extra.is_dict()) throw_error(fmt::format("argument after ** must be a mapping, not {}", extra.type_name()));
    for (const auto& [k, v] : extra.dict().items) args.kwargs.emplace_back(k, v);
  }
  return args;
}

Value Interpreter::eval_call(const Expr& e, const ScopePtr& scope) {
  Value fn = eval(*e.a, scope);
  CallArgs args = eval_args(e, scope);
  line_ = e.line;
  return call(fn, args);
}

Value Interpreter::eval_filter(const Expr& e, const ScopePtr& scope) {
  Value v = e.a ? eval(*e.a, scope) : Value(block_value_ ? *block_value_ : std::string());
  CallArgs args = eval_args(e, scope);
  line_ = e.line;
  if (!has_filter(e.name)) {
    if (is_jinja_filter(e.name)) throw_error(fmt::format("filter '{}' is not supported by this renderer", e.name));
    throw_error(fmt::format("No filter named '{}'.", e.name));
  }
  return apply_filter(*this, e.name, v, args);
}

Value Interpreter::eval_test(const Expr& e, const ScopePtr& scope) {
  Value v = eval(*e.a, scope);
  CallArgs args = eval_args(e, scope);
  line_ = e.line;
  if (!has_test(e.name)) throw_error(fmt::format("No test named '{}'.", e.name));
  return Value(apply_test(*this, e.name, v, args));
}

Value Interpreter::eval_slice(const Value& obj, const Expr& slice, const ScopePtr& scope) {
  std::optional<int64_t> bound[3];
  bool valid = true;
  for (int k = 0; k < 3; ++k) {
    if (!slice.items[k]) continue;
    Value v = eval(*slice.items[k], scope);
    if (v.is_none()) continue;
    if (v.is_int() || v.is_bool()) {
      bound[k] = v.as_int();
    } else {
      valid = false;
    }
  }
  if (obj.is_undefined()) throw_error(obj.undefined_message());
  if (!(obj.is_list() || obj.is_string()) || !valid) return Value::undefined(fmt::format("{} has no element slice", object_type_repr(obj)));
  int64_t step = bound[2].value_or(1);
  if (step == 0) throw_error("slice step cannot be zero");
  std::u32string chars;
  int64_t n;
  if (obj.is_string()) {
    chars = utf8_decode(obj.str());
    n = static_cast<int64_t>(chars.size());
  } else {
    n = static_cast<int64_t>(obj.items().size());
  }
  auto adjust = [&](std::optional<int64_t> b, bool is_start) -> int64_t {
    int64_t lower = step > 0 ? 0 : -1, upper = step > 0 ? n : n - 1;
    if (!b) return is_start ? (step < 0 ? upper : lower) : (step < 0 ? lower : upper);
    int64_t x = *b;
    if (x < 0) {
      x += n;
      if (x < lower) x = lower;
    } else if (x > upper) {
      x = upper;
    }
    return x;
  };
  int64_t start = adjust(bound[0], true), stop = adjust(bound[1], false);
  std::vector<int64_t> idx;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) idx.push_back(i);
  if (obj.is_string()) {
    std::u32string out;
    for (int64_t i : idx) out.push_back(chars[static_cast<size_t>(i)]);
    return Value(utf8_encode(out));
  }
  std::vector<Value> out;
  for (int64_t i : idx) out.push_back(obj.items()[static_cast<size_t>(i)]);
  return obj.is_tuple() ? Value::tuple(std::move(out)) : Value::list(std::move(out));
}

Value Interpreter::eval_compare(const Expr& e, const ScopePtr& scope) {
  Value left = eval(*e.a, scope);
  for (size_t k = 0; k < e.ops.size(); ++k) {
    Value right = eval(*e.items[k], scope);
    line_ = e.line;
    if (!compare_op(e.ops[k], left, right)) return Value(false);
    left = std::move(right);
  }
  return Value(true);
}

Value Interpreter::eval_inner(const Expr& e, const ScopePtr& scope) {
  switch (e.kind) {
    case ExprKind::Const: return e.value;
    case ExprKind::Name: return lookup(scope, e.name);
    case ExprKind::List:
    case ExprKind::Tuple: {
      std::vector<Value> items;
      items.reserve(e.items.size());
      for (const auto& x : e.items) {
        if (x->kind == ExprKind::Slice) throw_error("a slice is only allowed directly inside [...]");
        items.push_back(eval(*x, scope));
      }
      return e.kind == ExprKind::List ? Value::list(std::move(items)) : Value::tuple(std::move(items));
    }
    case ExprKind::Dict: {
      DictData d;
      for (size_t k = 0; k + 1 < e.items.size(); k += 2) {
        Value key = eval(*e.items[k], scope);
        Value val = eval(*e.items[k + 1], scope);
        if (!key.is_string())
          throw_error(fmt::format("dict keys must be strings in this renderer (got {})", key.type_name()));
        d.set(key.str(), std::move(val));
      }
      return Value::dict(std::move(d));
    }
    case ExprKind::GetAttr: return getattr(eval(*e.a, scope), e.name);
    case ExprKind::GetItem: {
      Value obj = eval(*e.a, scope);
      if (e.b->kind == ExprKind::Slice) return eval_slice(obj, *e.b, scope);
      Value key = eval(*e.b, scope);
      return getitem(obj, key);
    }
    case ExprKind::Slice: throw_error("a slice is only allowed directly inside [...]");
    case ExprKind::Call: return eval_call(e, scope);
    case ExprKind::Filter: return eval_filter(e, scope);
    case ExprKind::Test: return eval_test(e, scope);
    case ExprKind::Neg:
    case ExprKind::Pos: {
      Value v = eval(*e.a, scope);
      if (v.is_undefined()) throw_error(v.undefined_message());
      bool neg = e.kind == ExprKind::Neg;
      if (v.is_int() || v.is_bool()) {
        if (neg && v.as_int() == INT64_MIN) checked(true, 0);
        return Value(neg ? -v.as_int() : v.as_int());
      }
      if (v.is_float()) return Value(neg ? -v.as_double() : v.as_double());
      throw_error(fmt::format("bad operand type for unary {}: '{}'", neg ? "-" : "+", v.type_name()));
    }
    case ExprKind::Not: return Value(!eval(*e.a, scope).truthy());
    case ExprKind::And: {
      Value a = eval(*e.a, scope);
      if (!a.truthy()) return a;
      return eval(*e.b, scope);
    }
    case ExprKind::Or: {
      Value a = eval(*e.a, scope);
      if (a.truthy()) return a;
      return eval(*e.b, scope);
    }
    case ExprKind::BinOp: {
      Value a = eval(*e.a, scope);
      Value b = eval(*e.b, scope);
      line_ = e.line;
      return binary_op(*this, e.name, a, b);
    }
    case ExprKind::Compare: return eval_compare(e, scope);
    case ExprKind::Concat: {
      std::string out;
      for (const auto& x : e.items) {
        out += eval(*x, scope).to_str();
        check_size(out.size());
      }
      return Value(std::move(out));
    }
    case ExprKind::CondExpr: {
      if (eval(*e.a, scope).truthy()) return eval(*e.b, scope);
      if (e.c) return eval(*e.c, scope);
      return Value::undefined(fmt::format(
          "the inline if-expression on line {} evaluated to false and no else section was defined.", e.line));
    }
    case ExprKind::NSRef: throw_error("a namespace reference is only allowed as an assignment target");
  }
  throw_error("unknown expression");
}

}  // namespace pcm::jinja
