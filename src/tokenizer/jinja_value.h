// Values of the Jinja interpreter, with Python's semantics: str()/repr(), truthiness, ==, <, and
// json.dumps (the `tojson` filter transformers installs). Lists and dicts are immutable and shared
// (transformers renders in an ImmutableSandboxedEnvironment); only namespace() objects change.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/json.h"

namespace pcm::jinja {

class Interpreter;
class Value;
struct ListData;
struct DictData;
struct NamespaceData;
struct LoopData;
class Callable;

// A runtime error raised while rendering; the interpreter adds the template name and line.
class TemplateError : public std::exception {
 public:
  explicit TemplateError(std::string message) : message_(std::move(message)) {}
  const char* what() const noexcept override { return message_.c_str(); }
  const std::string& message() const { return message_; }

 private:
  std::string message_;
};

[[noreturn]] void throw_error(std::string message);

enum class Type : uint8_t { Undefined, None, Bool, Int, Float, String, List, Dict, Namespace, Callable, Loop };

class Value {
 public:
  Value() = default;  // undefined
  Value(bool b) : type_(Type::Bool), b_(b) {}
  Value(int v) : type_(Type::Int), i_(v) {}
  Value(int64_t v) : type_(Type::Int), i_(v) {}
  Value(double v) : type_(Type::Float), f_(v) {}
  Value(std::string s) : type_(Type::String), s_(std::move(s)) {}
  Value(const char* s) : type_(Type::String), s_(s) {}

  // `message` is what an operation on the undefined value reports (jinja2's UndefinedError text).
  static Value undefined(std::string message = {});
  static Value none();
  static Value list(std::vector<Value> items);
  static Value tuple(std::vector<Value> items, std::vector<std::string> fields = {});
  static Value dict(DictData data);
  static Value ns(std::shared_ptr<NamespaceData> data);
  static Value callable(std::shared_ptr<const Callable> fn);
  static Value loop(std::shared_ptr<LoopData> data);

  Type type() const { return type_; }
  bool is_undefined() const { return type_ == Type::Undefined; }
  bool is_none() const { return type_ == Type::None; }
  bool is_bool() const { return type_ == Type::Bool; }
  bool is_int() const { return type_ == Type::Int; }  // bool excluded
  bool is_float() const { return type_ == Type::Float; }
  bool is_number() const { return type_ == Type::Int || type_ == Type::Float || type_ == Type::Bool; }
  bool is_string() const { return type_ == Type::String; }
  bool is_list() const { return type_ == Type::List; }  // list or tuple
  bool is_tuple() const;
  bool is_dict() const { return type_ == Type::Dict; }
  bool is_namespace() const { return type_ == Type::Namespace; }
  bool is_callable() const { return type_ == Type::Callable || type_ == Type::Loop; }

  bool as_bool() const { return b_; }
  int64_t as_int() const { return type_ == Type::Bool ? (b_ ? 1 : 0) : i_; }  // Int or Bool
  double as_double() const;                                                   // any number
  const std::string& str() const { return s_; }  // String; the message of an Undefined
  const ListData& list() const;
  const std::vector<Value>& items() const;  // list or tuple items
  const DictData& dict() const;
  NamespaceData& ns() const;
  const Callable& fn() const;
  LoopData& loop() const;
  const std::shared_ptr<void>& ptr() const { return p_; }

  bool truthy() const;                 // Python bool()
  std::string to_str() const;          // Python str(); "" for undefined
  std::string repr() const;            // Python repr()
  std::string type_name() const;       // Python type(x).__name__
  std::string undefined_message() const;  // text of the error an undefined value raises when used

 private:
  Type type_ = Type::Undefined;
  union {
    bool b_;
    int64_t i_ = 0;
    double f_;
  };
  std::string s_;
  std::shared_ptr<void> p_;
};

struct ListData {
  std::vector<Value> items;
  bool tuple = false;
  std::vector<std::string> fields;  // named tuple attribute names (groupby), else empty
};

// Insertion-ordered, string keys (Python dicts preserve insertion order; JSON keys are strings).
struct DictData {
  std::vector<std::pair<std::string, Value>> items;
  const Value* find(std::string_view key) const;
  void set(std::string key, Value v);  // insert or overwrite in place
};

struct NamespaceData {
  DictData attrs;
};

// The `loop` variable of a for loop.
struct LoopData {
  int64_t index0 = 0;
  int64_t length = 0;
  int64_t depth0 = 0;
  std::shared_ptr<const std::vector<Value>> items;
  std::optional<std::vector<Value>> last_changed;
  std::shared_ptr<const Callable> recurse;  // set for `recursive` loops
};

struct CallArgs {
  std::vector<Value> args;
  std::vector<std::pair<std::string, Value>> kwargs;
  const Value* kwarg(std::string_view name) const;
};

class Callable {
 public:
  virtual ~Callable() = default;
  virtual Value call(Interpreter& interp, const CallArgs& args) const = 0;
  virtual std::string repr() const = 0;
};

// Python `==` (never raises) and `<` (raises TypeError for unordered types).
bool values_equal(const Value& a, const Value& b);
bool values_less(const Value& a, const Value& b);

// JSON in (keys keep their order when given an ordered_json), JSON out as Python's json.dumps.
Value from_json(const json& j);
Value from_json(const nlohmann::ordered_json& j);
struct DumpOptions {
  bool ensure_ascii = false;
  std::optional<std::string> indent;  // nullopt: single line
  std::string item_sep = ", ";
  std::string key_sep = ": ";
  bool sort_keys = false;
  size_t max_bytes = SIZE_MAX;  // the interpreter's output limit: an error, not a giant indent per line
};
std::string json_dumps(const Value& v, const DumpOptions& opts);
std::string json_quote(std::string_view s, bool ensure_ascii);

// Python int(x) of a float where it fits int64. NaN, infinities and values past +-2^63 are errors:
// Python raises for the first two and makes a big integer for the rest; a wrapped number is garbage.
int64_t float_to_int(double d);

}  // namespace pcm::jinja
