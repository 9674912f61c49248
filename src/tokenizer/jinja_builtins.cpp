// The built-ins real chat templates use: jinja2's filters and tests, Python str/dict methods, and the
// globals transformers installs (raise_exception, strftime_now) plus range/dict/namespace.
#include "tokenizer/jinja_builtins.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <set>

#include <fmt/format.h>

#include "tokenizer/jinja_interpreter.h"
#include "tokenizer/jinja_strings.h"

namespace pcm::jinja {

namespace {

const std::set<std::string, std::less<>> kFilters = {
    "trim", "length", "count", "tojson", "upper", "lower", "capitalize", "title", "replace", "join", "default", "d",
    "first", "last", "string", "int", "float", "list", "items", "selectattr", "rejectattr", "map", "reverse", "safe",
    "abs", "round", "select", "reject", "sort", "unique", "min", "max", "sum", "indent", "wordcount", "e", "escape"};

const std::set<std::string, std::less<>> kJinjaFilters = {
    "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape", "filesizeformat",
    "first", "float", "forceescape", "format", "groupby", "indent", "int", "items", "join", "last", "length", "list",
    "lower", "map", "max", "min", "pprint", "random", "reject", "rejectattr", "replace", "reverse", "round", "safe",
    "select", "selectattr", "slice", "sort", "string", "striptags", "sum", "title", "tojson", "trim", "truncate",
    "unique", "upper", "urlencode", "urlize", "wordcount", "wordwrap", "xmlattr"};

const std::set<std::string, std::less<>> kTests = {
    "defined", "undefined", "none", "string", "mapping", "iterable", "sequence", "number", "integer", "float",
    "boolean", "true", "false", "callable", "eq", "equalto", "==", "ne", "!=", "lt", "<", "le", "<=", "gt", ">", "ge",
    ">=", "in", "odd", "even", "divisibleby", "lower", "upper", "sameas"};

const Value& arg_or(const ArgBinder& b, size_t i, const Value& fallback) { return b.has(i) ? *b.get(i) : fallback; }

std::string need_string(const Value& v, const char* what) {
  if (v.is_undefined()) throw_error(v.undefined_message());
  if (!v.is_string()) throw_error(fmt::format("{} expects a string, got {}", what, v.type_name()));
  return v.str();
}

// Attribute or key lookup used by map/selectattr/join(attribute=): "a.b" walks nested keys.
Value lookup_attr(Interpreter& in, const Value& v, const std::string& path) {
  Value cur = v;
  size_t start = 0;
  while (start <= path.size()) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    cur = in.getattr(cur, part);
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return cur;
}

// A str/dict method bound to its object.
class BoundMethod : public Callable {
 public:
  using Fn = Value (*)(Interpreter&, const Value&, const CallArgs&);
  BoundMethod(Value self, std::string name, Fn fn) : self_(std::move(self)), name_(std::move(name)), fn_(fn) {}
  Value call(Interpreter& in, const CallArgs& args) const override { return fn_(in, self_, args); }
  std::string repr() const override { return "<built-in method " + name_ + ">"; }

 private:
  Value self_;
  std::string name_;
  Fn fn_;
};

Value list_of_strings(const std::vector<std::string>& v) {
  std::vector<Value> out;
  for (const auto& s : v) out.emplace_back(s);
  return Value::list(std::move(out));
}

std::optional<std::string> opt_str(const ArgBinder& b, size_t i) {
  if (!b.has(i) || b.get(i)->is_none()) return std::nullopt;
  return need_string(*b.get(i), "argument");
}

int64_t opt_int(const ArgBinder& b, size_t i, int64_t fallback) {
  if (!b.has(i) || b.get(i)->is_none()) return fallback;
  if (!b.get(i)->is_int() && !b.get(i)->is_bool()) throw_error("an integer argument is required");
  return b.get(i)->as_int();
}

Value string_method(Interpreter& in, const std::string& name, const std::string& s, const CallArgs& a) {
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    ArgBinder b(name, a, {"chars"});
    auto chars = opt_str(b, 0);
    return Value(py_strip(s, name != "rstrip", name != "lstrip", chars ? &*chars : nullptr));
  }
  if (name == "upper") return Value(py_upper(s));
  if (name == "lower") return Value(py_lower(s));
  if (name == "title") return Value(py_title(s));
  if (name == "capitalize") return Value(py_capitalize(s));
  if (name == "startswith" || name == "endswith") {
    ArgBinder b(name, a, {"prefix"});
    if (!b.has(0)) throw_error(name + "() takes at least 1 argument");
    std::vector<Value> options = b.get(0)->is_list() ? b.get(0)->items() : std::vector<Value>{*b.get(0)};
    for (const auto& o : options) {
      std::string p = need_string(o, name.c_str());
      if (name == "startswith" ? s.compare(0, p.size(), p) == 0 && s.size() >= p.size()
                               : s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0)
        return Value(true);
    }
    return Value(false);
  }
  if (name == "split" || name == "rsplit") {
    ArgBinder b(name, a, {"sep", "maxsplit"});
    auto sep = opt_str(b, 0);
    if (sep && sep->empty()) throw_error("empty separator");
    int64_t maxsplit = opt_int(b, 1, -1);
    return list_of_strings(name == "split" ? py_split(s, sep, maxsplit) : py_rsplit(s, sep, maxsplit));
  }
  if (name == "splitlines") return list_of_strings(py_splitlines(s));
  if (name == "replace") {
    ArgBinder b(name, a, {"old", "new", "count"});
    if (!b.has(0) || !b.has(1)) throw_error("replace() takes at least 2 arguments");
    return Value(py_replace(s, need_string(*b.get(0), "replace"), need_string(*b.get(1), "replace"), opt_int(b, 2, -1)));
  }
  if (name == "find" || name == "rfind") {
    ArgBinder b(name, a, {"sub"});
    if (!b.has(0)) throw_error(name + "() takes 1 argument");
    return Value(py_find(s, need_string(*b.get(0), name.c_str()), name == "rfind"));
  }
  if (name == "count") {
    ArgBinder b(name, a, {"sub"});
    if (!b.has(0)) throw_error("count() takes 1 argument");
    return Value(py_count(s, need_string(*b.get(0), "count")));
  }
  if (name == "join") {
    ArgBinder b(name, a, {"iterable"});
    if (!b.has(0)) throw_error("join() takes 1 argument");
    std::string out;
    bool first = true;
    for (const auto& v : in.iterate(*b.get(0))) {
      if (!first) out += s;
      out += need_string(v, "join");
      first = false;
    }
    return Value(out);
  }
  if (name == "format") return Value(str_format(in, s, a));
  if (name == "isdigit" || name == "isalpha" || name == "isalnum" || name == "isspace") {
    std::u32string u = utf8_decode(s);
    if (u.empty()) return Value(false);
    for (char32_t c : u) {
      bool ok = name == "isdigit" ? py_isdigit(c) : name == "isalpha" ? py_isalpha(c) : name == "isalnum" ? py_isalnum(c) : py_isspace(c);
      if (!ok) return Value(false);
    }
    return Value(true);
  }
  if (name == "islower") return Value(py_is_cased_lower(s));
  if (name == "isupper") return Value(py_is_cased_upper(s));
  throw_error(fmt::format("'str' object has no attribute '{}'", name));
}

Value dict_method(Interpreter& in, const std::string& name, const DictData& d, const CallArgs& a) {
  if (name == "get") {
    ArgBinder b(name, a, {"key", "default"});
    if (!b.has(0)) throw_error("get() takes at least 1 argument");
    const Value& key = *b.get(0);
    if (key.is_string())
      if (const Value* v = d.find(key.str())) return *v;
    return b.has(1) ? *b.get(1) : Value::none();
  }
  std::vector<Value> out;
  for (const auto& [k, v] : d.items) {
    if (name == "keys") out.emplace_back(k);
    else if (name == "values") out.push_back(v);
    else if (name == "items") out.push_back(Value::tuple({Value(k), v}));
    else throw_error(fmt::format("'dict' object has no attribute '{}'", name));
  }
  return Value::list(std::move(out));
}

const char* kStringMethods[] = {"strip", "lstrip", "rstrip", "upper", "lower", "title", "capitalize", "startswith",
                                "endswith", "split", "rsplit", "splitlines", "replace", "find", "rfind", "count",
                                "join", "format", "isdigit", "isalpha", "isalnum", "isspace", "islower", "isupper"};

// Method tables are keyed by name; the name is passed back in through a small thunk per method.
template <size_t I>
Value string_thunk(Interpreter& in, const Value& self, const CallArgs& a) {
  return string_method(in, kStringMethods[I], self.str(), a);
}

template <size_t... I>
BoundMethod::Fn string_fn(size_t i, std::index_sequence<I...>) {
  static const BoundMethod::Fn table[] = {&string_thunk<I>...};
  return table[i];
}

const char* kDictMethods[] = {"get", "keys", "values", "items"};
template <size_t I>
Value dict_thunk(Interpreter& in, const Value& self, const CallArgs& a) {
  return dict_method(in, kDictMethods[I], self.dict(), a);
}
template <size_t... I>
BoundMethod::Fn dict_fn(size_t i, std::index_sequence<I...>) {
  static const BoundMethod::Fn table[] = {&dict_thunk<I>...};
  return table[i];
}

Value do_round(double v, int64_t precision, const std::string& method) {
  const double m = std::pow(10.0, static_cast<double>(precision));
  // Past a double's digits (m or v * m overflows) Python's round gives v back; far left of them, a zero.
  if (!std::isfinite(v) || !std::isfinite(m) || !std::isfinite(v * m)) return Value(v);
  if (m == 0) return Value(std::copysign(0.0, v));
  double r = method == "ceil" ? std::ceil(v * m) / m : method == "floor" ? std::floor(v * m) / m : std::nearbyint(v * m) / m;
  return Value(r);
}

// A width of spaces (indent, tojson): one past the output limit is that limit's error, not a 10 GB string.
std::string spaces(const Interpreter& in, int64_t n) {
  if (n <= 0) return "";
  in.check_size(static_cast<size_t>(n));
  return std::string(static_cast<size_t>(n), ' ');
}

// jinja2's int filter: int(x), else int(float(x)) ("42.5" gives 42), else the default; NaN is not a
// number (the default) and a value past int64 is an error.
Value int_filter(const Value& v, const Value& fallback, int base) {
  if (v.is_int() || v.is_bool()) return Value(v.as_int());
  if (v.is_float()) return std::isnan(v.as_double()) ? fallback : Value(float_to_int(v.as_double()));
  const std::string s = py_strip(v.to_str(), true, true);
  size_t used = 0;
  try {
    int64_t r = std::stoll(s, &used, base);
    if (used == s.size()) return Value(r);
  } catch (const std::exception&) {
  }
  try {
    double d = std::stod(s, &used);
    if (used == s.size() && !std::isnan(d)) return Value(float_to_int(d));
  } catch (const std::logic_error&) {  // not a number, or out of double range
  }
  return fallback;
}

}  // namespace

ArgBinder::ArgBinder(std::string_view fname, const CallArgs& args, std::initializer_list<const char*> names)
    : slots_(names.size(), nullptr) {
  if (args.args.size() > names.size())
    throw_error(fmt::format("{}() takes at most {} arguments ({} given)", fname, names.size(), args.args.size()));
  for (size_t i = 0; i < args.args.size(); ++i) slots_[i] = &args.args[i];
  for (const auto& [k, v] : args.kwargs) {
    size_t i = 0;
    for (const char* n : names) {
      if (k == n) break;
      ++i;
    }
    if (i == names.size()) throw_error(fmt::format("{}() got an unexpected keyword argument '{}'", fname, k));
    if (slots_[i]) throw_error(fmt::format("{}() got multiple values for argument '{}'", fname, k));
    slots_[i] = &v;
  }
}

bool has_filter(std::string_view name) { return kFilters.count(name) > 0; }
bool has_test(std::string_view name) { return kTests.count(name) > 0; }
bool is_jinja_filter(std::string_view name) { return kJinjaFilters.count(name) > 0; }

Value apply_filter(Interpreter& in, std::string_view fname, const Value& v, const CallArgs& args) {
  const std::string name(fname);
  if (name == "default" || name == "d") {
    ArgBinder b(name, args, {"default_value", "boolean"});
    const bool boolean = b.has(1) && b.get(1)->truthy();
    if (v.is_undefined() || (boolean && !v.truthy())) return arg_or(b, 0, Value(""));
    return v;
  }
  if (v.is_undefined() && name != "string" && name != "length" && name != "count")
    throw_error(v.undefined_message());
  if (name == "trim") {
    ArgBinder b(name, args, {"chars"});
    auto chars = opt_str(b, 0);
    return Value(py_strip(v.to_str(), true, true, chars ? &*chars : nullptr));
  }
  if (name == "length" || name == "count") {
    if (v.is_string()) return Value(static_cast<int64_t>(utf8_length(v.str())));
    if (v.is_list()) return Value(static_cast<int64_t>(v.items().size()));
    if (v.is_dict()) return Value(static_cast<int64_t>(v.dict().items.size()));
    if (v.is_undefined()) return Value(int64_t{0});
    throw_error(fmt::format("object of type '{}' has no len()", v.type_name()));
  }
  if (name == "tojson") {
    ArgBinder b(name, args, {"indent", "separators", "sort_keys", "ensure_ascii"});
    DumpOptions o;
    if (b.has(0) && !b.get(0)->is_none()) {
      const Value& ind = *b.get(0);
      o.indent = ind.is_string() ? ind.str() : spaces(in, ind.as_int());
      o.item_sep.resize(1);  // ", " -> ","; assigning "," trips GCC 12's -Wrestrict false positive
    }
    if (b.has(1) && b.get(1)->is_list() && b.get(1)->items().size() == 2) {
      o.item_sep = need_string(b.get(1)->items()[0], "separators");
      o.key_sep = need_string(b.get(1)->items()[1], "separators");
    }
    o.sort_keys = b.has(2) && b.get(2)->truthy();
    o.ensure_ascii = b.has(3) && b.get(3)->truthy();
    o.max_bytes = in.limits().max_output;
    return Value(json_dumps(v, o));
  }
  if (name == "upper") return Value(py_upper(v.to_str()));
  if (name == "lower") return Value(py_lower(v.to_str()));
  if (name == "capitalize") return Value(py_capitalize(v.to_str()));
  if (name == "title") return Value(py_title(v.to_str()));
  if (name == "string") return Value(v.to_str());
  if (name == "safe" || name == "e" || name == "escape") {
    if (name == "safe") return v;
    std::string s = v.to_str(), out;
    for (char c : s) {  // markupsafe.escape
      switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&#34;"; break;
        case '\'': out += "&#39;"; break;
        default: out += c;
      }
    }
    return Value(out);
  }
  if (name == "replace") {
    ArgBinder b(name, args, {"old", "new", "count"});
    if (!b.has(0) || !b.has(1)) throw_error("replace filter takes 2 arguments");
    return Value(py_replace(v.to_str(), b.get(0)->to_str(), b.get(1)->to_str(), opt_int(b, 2, -1)));
  }
  if (name == "int") {
    ArgBinder b(name, args, {"default", "base"});
    return int_filter(v, arg_or(b, 0, Value(int64_t{0})), static_cast<int>(opt_int(b, 1, 10)));
  }
  if (name == "float") {
    ArgBinder b(name, args, {"default"});
    if (v.is_number()) return Value(v.as_double());
    try {
      return Value(std::stod(v.to_str()));
    } catch (const std::exception&) {
      return arg_or(b, 0, Value(0.0));
    }
  }
  if (name == "abs") {
    if (v.is_int()) return Value(v.as_int() < 0 ? -v.as_int() : v.as_int());
    return Value(std::fabs(v.as_double()));
  }
  if (name == "round") {
    ArgBinder b(name, args, {"precision", "method"});
    return do_round(v.as_double(), opt_int(b, 0, 0), b.has(1) ? b.get(1)->to_str() : "common");
  }
  if (name == "items") {
    if (!v.is_dict()) throw_error(fmt::format("items filter expects a mapping, got {}", v.type_name()));
    std::vector<Value> out;
    for (const auto& [k, x] : v.dict().items) out.push_back(Value::tuple({Value(k), x}));
    return Value::list(std::move(out));
  }
  // The rest work on sequences.
  std::vector<Value> items = in.iterate(v);
  if (name == "list") return Value::list(items);
  if (name == "first" || name == "last") {
    if (items.empty()) return Value::undefined(fmt::format("No {} item, sequence was empty.", name));
    return name == "first" ? items.front() : items.back();
  }
  if (name == "reverse") {
    if (v.is_string()) {
      std::u32string u = utf8_decode(v.str());
      std::reverse(u.begin(), u.end());
      return Value(utf8_encode(u));
    }
    std::reverse(items.begin(), items.end());
    return Value::list(std::move(items));
  }
  if (name == "join") {
    ArgBinder b(name, args, {"d", "attribute"});
    const std::string sep = b.has(0) ? b.get(0)->to_str() : "";
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
      if (i) out += sep;
      out += (b.has(1) ? lookup_attr(in, items[i], b.get(1)->to_str()) : items[i]).to_str();
      in.check_size(out.size());
    }
    return Value(out);
  }
  if (name == "map") {
    std::vector<Value> out;
    if (const Value* attr = args.kwarg("attribute")) {
      const Value* dflt = args.kwarg("default");
      for (const auto& x : items) {
        Value r = lookup_attr(in, x, attr->to_str());
        out.push_back(r.is_undefined() && dflt ? *dflt : r);
      }
      return Value::list(std::move(out));
    }
    if (args.args.empty()) throw_error("map() needs a filter name or attribute=");
    const std::string filter = need_string(args.args[0], "map");
    if (!has_filter(filter)) throw_error(fmt::format("filter '{}' is not supported by this renderer", filter));
    CallArgs rest{std::vector<Value>(args.args.begin() + 1, args.args.end()), args.kwargs};
    for (const auto& x : items) out.push_back(apply_filter(in, filter, x, rest));
    return Value::list(std::move(out));
  }
  if (name == "selectattr" || name == "rejectattr" || name == "select" || name == "reject") {
    const bool by_attr = name == "selectattr" || name == "rejectattr";
    const bool keep_if = name == "selectattr" || name == "select";
    size_t k = 0;
    std::string attr;
    if (by_attr) {
      if (args.args.empty()) throw_error(name + "() needs an attribute name");
      attr = args.args[k++].to_str();
    }
    std::string test = k < args.args.size() ? need_string(args.args[k++], name.c_str()) : "";
    CallArgs test_args{std::vector<Value>(args.args.begin() + static_cast<long>(std::min(k, args.args.size())), args.args.end()), {}};
    if (!test.empty() && !has_test(test)) throw_error(fmt::format("No test named '{}'.", test));
    std::vector<Value> out;
    for (const auto& x : items) {
      Value subject = by_attr ? lookup_attr(in, x, attr) : x;
      bool ok = test.empty() ? subject.truthy() : apply_test(in, test, subject, test_args);
      if (ok == keep_if) out.push_back(x);
      in.step();
    }
    return Value::list(std::move(out));
  }
  if (name == "sort") {
    ArgBinder b(name, args, {"reverse", "case_sensitive", "attribute"});
    const bool rev = b.has(0) && b.get(0)->truthy();
    std::vector<Value> keys;
    for (const auto& x : items) keys.push_back(b.has(2) ? lookup_attr(in, x, b.get(2)->to_str()) : x);
    std::vector<size_t> idx(items.size());
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t c) {
      return rev ? values_less(keys[c], keys[a]) : values_less(keys[a], keys[c]);
    });
    std::vector<Value> out;
    for (size_t i : idx) out.push_back(items[i]);
    return Value::list(std::move(out));
  }
  if (name == "unique") {
    std::vector<Value> out;
    for (const auto& x : items)
      if (std::none_of(out.begin(), out.end(), [&](const Value& y) { return values_equal(x, y); })) out.push_back(x);
    return Value::list(std::move(out));
  }
  if (name == "min" || name == "max") {
    if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
    Value best = items[0];
    for (const auto& x : items)
      if (name == "min" ? values_less(x, best) : values_less(best, x)) best = x;
    return best;
  }
  if (name == "sum") {
    Value acc(int64_t{0});
    for (const auto& x : items) acc = binary_op(in, "+", acc, x);
    return acc;
  }
  if (name == "wordcount") return Value(static_cast<int64_t>(py_split(v.to_str(), std::nullopt, -1).size()));
  if (name == "indent") {
    ArgBinder b(name, args, {"width", "first", "blank"});
    std::string pad = b.has(0) && b.get(0)->is_string() ? b.get(0)->str() : spaces(in, opt_int(b, 0, 4));
    auto lines = py_splitlines(v.to_str(), true);
    std::string out;
    for (size_t i = 0; i < lines.size(); ++i) {
      bool blank = py_strip(lines[i], true, true).empty();
      if ((i > 0 || (b.has(1) && b.get(1)->truthy())) && (!blank || (b.has(2) && b.get(2)->truthy()))) out += pad;
      out += lines[i];
      in.check_size(out.size());
    }
    return Value(out);
  }
  throw_error(fmt::format("filter '{}' is not supported by this renderer", name));
}

bool apply_test(Interpreter& in, std::string_view tname, const Value& v, const CallArgs& args) {
  const std::string name(tname);
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.is_dict();
  if (name == "iterable") return v.is_list() || v.is_dict() || v.is_string();
  if (name == "sequence") return v.is_list() || v.is_dict() || v.is_string();
  if (name == "number") return v.is_number();
  if (name == "integer") return v.is_int();
  if (name == "float") return v.is_float();
  if (name == "boolean") return v.is_bool();
  if (name == "true") return v.is_bool() && v.as_bool();
  if (name == "false") return v.is_bool() && !v.as_bool();
  if (name == "callable") return v.is_callable();
  if (name == "lower") return v.is_string() && py_is_cased_lower(v.str());
  if (name == "upper") return v.is_string() && py_is_cased_upper(v.str());
  if (name == "odd" || name == "even") {
    if (!v.is_int()) throw_error(fmt::format("{} test needs an integer", name));
    return (v.as_int() % 2 != 0) == (name == "odd");
  }
  if (args.args.empty()) throw_error(fmt::format("test '{}' needs an argument", name));
  const Value& other = args.args[0];
  if (name == "eq" || name == "equalto" || name == "==" || name == "sameas") return values_equal(v, other);
  if (name == "ne" || name == "!=") return !values_equal(v, other);
  if (name == "lt" || name == "<") return values_less(v, other);
  if (name == "gt" || name == ">") return values_less(other, v);
  if (name == "le" || name == "<=") return !values_less(other, v);
  if (name == "ge" || name == ">=") return !values_less(v, other);
  if (name == "in") return contains(other, v);
  if (name == "divisibleby") return other.as_int() != 0 && v.as_int() % other.as_int() == 0;
  throw_error(fmt::format("No test named '{}'.", name));
}

std::optional<Value> method_attribute(const Value& self, const std::string& name) {
  if (self.is_string()) {
    for (size_t i = 0; i < std::size(kStringMethods); ++i)
      if (name == kStringMethods[i])
        return Value::callable(std::make_shared<BoundMethod>(self, name, string_fn(i, std::make_index_sequence<std::size(kStringMethods)>{})));
    return std::nullopt;
  }
  if (self.is_dict()) {
    for (size_t i = 0; i < std::size(kDictMethods); ++i)
      if (name == kDictMethods[i])
        return Value::callable(std::make_shared<BoundMethod>(self, name, dict_fn(i, std::make_index_sequence<std::size(kDictMethods)>{})));
    return std::nullopt;
  }
  if (self.is_list() && (name == "append" || name == "extend" || name == "pop" || name == "insert" || name == "remove"))
    return Value::undefined(fmt::format("access to attribute '{}' of '{}' object is unsafe.", name, self.type_name()));
  return std::nullopt;
}

void add_globals(DictData& g) {
  g.set("raise_exception", Value::callable(std::make_shared<Function>("raise_exception", [](Interpreter&, const CallArgs& a) -> Value {
          throw RaisedError(a.args.empty() ? std::string() : a.args[0].to_str());
        })));
  g.set("range", Value::callable(std::make_shared<Function>("range", [](Interpreter& in, const CallArgs& a) -> Value {
          int64_t start = 0, stop = 0, step = 1;
          if (a.args.size() == 1) stop = a.args[0].as_int();
          else if (a.args.size() >= 2) start = a.args[0].as_int(), stop = a.args[1].as_int();
          if (a.args.size() >= 3) step = a.args[2].as_int();
          if (a.args.empty() || a.args.size() > 3) throw_error("range expected 1 to 3 arguments");
          if (step == 0) throw_error("range() arg 3 must not be zero");
          std::vector<Value> out;
          for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
            out.emplace_back(i);
            if (static_cast<int64_t>(out.size()) > in.limits().max_range)
              throw_error(fmt::format("Range too big. The sandbox blocks ranges larger than MAX_RANGE ({}).", in.limits().max_range));
          }
          return Value::list(std::move(out));
        })));
  g.set("dict", Value::callable(std::make_shared<Function>("dict", [](Interpreter&, const CallArgs& a) -> Value {
          DictData d;
          if (!a.args.empty() && a.args[0].is_dict()) d = a.args[0].dict();
          for (const auto& [k, v] : a.kwargs) d.set(k, v);
          return Value::dict(std::move(d));
        })));
  g.set("namespace", Value::callable(std::make_shared<Function>("namespace", [](Interpreter& in, const CallArgs& a) -> Value {
          auto ns = std::make_shared<NamespaceData>();
          if (!a.args.empty() && a.args[0].is_dict()) ns->attrs = a.args[0].dict();
          for (const auto& [k, v] : a.kwargs) ns->attrs.set(k, v);
          in.track_namespace(ns);
          return Value::ns(ns);
        })));
  g.set("strftime_now", Value::callable(std::make_shared<Function>("strftime_now", [](Interpreter&, const CallArgs& a) -> Value {
          if (a.args.empty()) throw_error("strftime_now() takes a format");
          std::time_t t = std::time(nullptr);
          std::tm tm{};
          localtime_r(&t, &tm);
          char buf[256];
          size_t n = std::strftime(buf, sizeof buf, a.args[0].to_str().c_str(), &tm);
          return Value(std::string(buf, n));
        })));
}

std::string percent_format(Interpreter& in, const std::string& f, const Value& args) {
  std::vector<Value> vals = args.is_tuple() ? args.items() : std::vector<Value>{args};
  std::string out;
  size_t k = 0;
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] != '%') {
      out += f[i];
      continue;
    }
    if (++i >= f.size()) throw_error("incomplete format");
    char c = f[i];
    if (c == '%') {
      out += '%';
      continue;
    }
    if (k >= vals.size()) throw_error("not enough arguments for format string");
    const Value& v = vals[k++];
    if (c == 's') out += v.to_str();
    else if (c == 'r') out += v.repr();
    else if (c == 'd' || c == 'i') out += std::to_string(v.is_float() ? float_to_int(v.as_double()) : v.as_int());
    else throw_error(fmt::format("unsupported format character '{}'", c));
    in.check_size(out.size());
  }
  if (k < vals.size() && args.is_tuple()) throw_error("not all arguments converted during string formatting");
  return out;
}

std::string str_format(Interpreter& in, const std::string& f, const CallArgs& a) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] == '{' && i + 1 < f.size() && f[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    if (f[i] == '}' && i + 1 < f.size() && f[i + 1] == '}') {
      out += '}';
      ++i;
      continue;
    }
    if (f[i] != '{') {
      out += f[i];
      continue;
    }
    size_t close = f.find('}', i);
    if (close == std::string::npos) throw_error("Single '{' encountered in format string");
    std::string field = f.substr(i + 1, close - i - 1);
    if (field.find(':') != std::string::npos || field.find('!') != std::string::npos)
      throw_error("format specs in str.format() are not supported by this renderer");
    const Value* v = nullptr;
    if (field.empty()) {
      if (auto_index >= a.args.size()) throw_error("Replacement index out of range for positional args tuple");
      v = &a.args[auto_index++];
    } else if (std::all_of(field.begin(), field.end(), ::isdigit)) {
      size_t idx = std::stoul(field);
      if (idx >= a.args.size()) throw_error("Replacement index out of range for positional args tuple");
      v = &a.args[idx];
    } else {
      v = a.kwarg(field);
      if (!v) throw_error(fmt::format("KeyError: '{}'", field));
    }
    out += v->to_str();
    in.check_size(out.size());
    i = close;
  }
  return out;
}

}  // namespace pcm::jinja
