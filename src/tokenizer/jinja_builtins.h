// Built-in filters, tests, global functions and Python methods of the Jinja interpreter.
#pragma once
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace pcm::jinja {

class Interpreter;

// Filters and tests this interpreter implements; `is_jinja_filter/test` names jinja2's full set
// (a known-but-unimplemented one gets a clearer error).
bool has_filter(std::string_view name);
bool has_test(std::string_view name);
bool is_jinja_filter(std::string_view name);

Value apply_filter(Interpreter& in, std::string_view name, const Value& value, const CallArgs& args);
bool apply_test(Interpreter& in, std::string_view name, const Value& value, const CallArgs& args);

// Python attribute access on built-in types (str/dict/list methods): a bound method, or nullopt
// when the type has no such attribute. Mutating list/dict methods give the sandbox's unsafe undefined.
std::optional<Value> method_attribute(const Value& self, const std::string& name);

// Globals: range, dict, namespace, raise_exception, strftime_now, joiner, cycler, lipsum.
void add_globals(DictData& globals);

// Python `%` string formatting and str.format().
std::string percent_format(Interpreter& in, const std::string& fmt_str, const Value& args);
std::string str_format(Interpreter& in, const std::string& fmt_str, const CallArgs& args);

// A callable implemented in C++.
class Function : public Callable {
 public:
  using Fn = Value (*)(Interpreter&, const CallArgs&);
  Function(std::string name, Fn fn) : name_(std::move(name)), fn_(fn) {}
  Value call(Interpreter& in, const CallArgs& args) const override { return fn_(in, args); }
  std::string repr() const override { return "<function " + name_ + ">"; }

 private:
  std::string name_;
  Fn fn_;
};

// Binds positional and keyword arguments to named parameters the way Python does.
class ArgBinder {
 public:
  ArgBinder(std::string_view fname, const CallArgs& args, std::initializer_list<const char*> names);
  const Value* get(size_t i) const { return slots_[i]; }
  bool has(size_t i) const { return slots_[i] != nullptr; }

 private:
  std::vector<const Value*> slots_;
};

}  // namespace pcm::jinja
