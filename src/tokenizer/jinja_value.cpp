#include "tokenizer/jinja_value.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "tokenizer/jinja_strings.h"

namespace pcm::jinja {

void throw_error(std::string message) { throw TemplateError(std::move(message)); }

Value Value::undefined(std::string message) {
  Value v;
  v.s_ = std::move(message);
  return v;
}

Value Value::none() {
  Value v;
  v.type_ = Type::None;
  return v;
}

Value Value::list(std::vector<Value> items) {
  Value v;
  v.type_ = Type::List;
  auto d = std::make_shared<ListData>();
  d->items = std::move(items);
  v.p_ = std::move(d);
  return v;
}

Value Value::tuple(std::vector<Value> items, std::vector<std::string> fields) {
  Value v;
  v.type_ = Type::List;
  auto d = std::make_shared<ListData>();
  d->items = std::move(items);
  d->tuple = true;
  d->fields = std::move(fields);
  v.p_ = std::move(d);
  return v;
}

Value Value::dict(DictData data) {
  Value v;
  v.type_ = Type::Dict;
  v.p_ = std::make_shared<DictData>(std::move(data));
  return v;
}

Value Value::ns(std::shared_ptr<NamespaceData> data) {
  Value v;
  v.type_ = Type::Namespace;
  v.p_ = std::move(data);
  return v;
}

Value Value::callable(std::shared_ptr<const Callable> fn) {
  Value v;
  v.type_ = Type::Callable;
  v.p_ = std::const_pointer_cast<Callable>(std::move(fn));
  return v;
}

Value Value::loop(std::shared_ptr<LoopData> data) {
  Value v;
  v.type_ = Type::Loop;
  v.p_ = std::move(data);
  return v;
}

bool Value::is_tuple() const { return type_ == Type::List && list().tuple; }

double Value::as_double() const {
  switch (type_) {
    case Type::Float: return f_;
    case Type::Int: return static_cast<double>(i_);
    case Type::Bool: return b_ ? 1.0 : 0.0;
    default: return 0.0;
  }
}

const ListData& Value::list() const { return *static_cast<const ListData*>(p_.get()); }
const std::vector<Value>& Value::items() const { return list().items; }
const DictData& Value::dict() const { return *static_cast<const DictData*>(p_.get()); }
NamespaceData& Value::ns() const { return *static_cast<NamespaceData*>(p_.get()); }
const Callable& Value::fn() const { return *static_cast<const Callable*>(p_.get()); }
LoopData& Value::loop() const { return *static_cast<LoopData*>(p_.get()); }

bool Value::truthy() const {
  switch (type_) {
    case Type::Undefined:
    case Type::None: return false;
    case Type::Bool: return b_;
    case Type::Int: return i_ != 0;
    case Type::Float: return f_ != 0.0;
    case Type::String: return !s_.empty();
    case Type::List: return !items().empty();
    case Type::Dict: return !dict().items.empty();
    case Type::Loop: return loop().length > 0;
    case Type::Namespace:
    case Type::Callable: return true;
  }
  return false;
}

std::string Value::to_str() const {
  if (type_ == Type::String) return s_;
  if (type_ == Type::Undefined) return {};
  return repr();
}

namespace {

std::string repr_sequence(const std::vector<Value>& items, bool tuple) {
  std::string out = tuple ? "(" : "[";
  for (size_t k = 0; k < items.size(); ++k) {
    if (k) out += ", ";
    out += items[k].repr();
  }
  if (tuple && items.size() == 1) out += ",";
  out += tuple ? ")" : "]";
  return out;
}

std::string repr_dict(const DictData& d) {
  std::string out = "{";
  for (size_t k = 0; k < d.items.size(); ++k) {
    if (k) out += ", ";
    out += py_repr_string(d.items[k].first);
    out += ": ";
    out += d.items[k].second.repr();
  }
  out += "}";
  return out;
}

}  // namespace

std::string Value::repr() const {
  switch (type_) {
    case Type::Undefined: return "Undefined";
    case Type::None: return "None";
    case Type::Bool: return b_ ? "True" : "False";
    case Type::Int: return std::to_string(i_);
    case Type::Float: return py_float_repr(f_);
    case Type::String: return py_repr_string(s_);
    case Type::List: return repr_sequence(items(), list().tuple);
    case Type::Dict: return repr_dict(dict());
    case Type::Namespace: return "<Namespace " + repr_dict(ns().attrs) + ">";
    case Type::Callable: return fn().repr();
    case Type::Loop: return fmt::format("<LoopContext {}/{}>", loop().index0 + 1, loop().length);
  }
  return {};
}

std::string Value::type_name() const {
  switch (type_) {
    case Type::Undefined: return "Undefined";
    case Type::None: return "NoneType";
    case Type::Bool: return "bool";
    case Type::Int: return "int";
    case Type::Float: return "float";
    case Type::String: return "str";
    case Type::List: return list().tuple ? "tuple" : "list";
    case Type::Dict: return "dict";
    case Type::Namespace: return "Namespace";
    case Type::Callable: return "function";
    case Type::Loop: return "LoopContext";
  }
  return "object";
}

std::string Value::undefined_message() const { return s_.empty() ? std::string("value is undefined") : s_; }

const Value* DictData::find(std::string_view key) const {
  for (const auto& [k, v] : items)
    if (k == key) return &v;
  return nullptr;
}

void DictData::set(std::string key, Value v) {
  for (auto& [k, old] : items) {
    if (k == key) {
      old = std::move(v);
      return;
    }
  }
  items.emplace_back(std::move(key), std::move(v));
}

const Value* CallArgs::kwarg(std::string_view name) const {
  for (const auto& [k, v] : kwargs)
    if (k == name) return &v;
  return nullptr;
}

bool values_equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_double() == b.as_double();
    return a.as_int() == b.as_int();
  }
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case Type::Undefined:
    case Type::None: return true;
    case Type::String: return a.str() == b.str();
    case Type::List: {
      if (a.list().tuple != b.list().tuple) return false;
      const auto& x = a.items();
      const auto& y = b.items();
      if (x.size() != y.size()) return false;
      for (size_t k = 0; k < x.size(); ++k)
        if (!values_equal(x[k], y[k])) return false;
      return true;
    }
    case Type::Dict: {
      const auto& x = a.dict().items;
      if (x.size() != b.dict().items.size()) return false;
      for (const auto& [k, v] : x) {
        const Value* w = b.dict().find(k);
        if (!w || !values_equal(v, *w)) return false;
      }
      return true;
    }
    default: return a.ptr() == b.ptr();
  }
}

bool values_less(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_double() < b.as_double();
    return a.as_int() < b.as_int();
  }
  if (a.is_string() && b.is_string()) return a.str() < b.str();
  if (a.is_list() && b.is_list() && a.list().tuple == b.list().tuple) {
    const auto& x = a.items();
    const auto& y = b.items();
    for (size_t k = 0; k < x.size() && k < y.size(); ++k) {
      if (!values_equal(x[k], y[k])) return values_less(x[k], y[k]);
    }
    return x.size() < y.size();
  }
  if (a.is_undefined()) throw_error(a.undefined_message());
  if (b.is_undefined()) throw_error(b.undefined_message());
  throw_error(fmt::format("'<' not supported between instances of '{}' and '{}'", a.type_name(), b.type_name()));
}

namespace {

template <class J>
Value from_json_impl(const J& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null: return Value::none();
    case nlohmann::json::value_t::boolean: return Value(j.template get<bool>());
    case nlohmann::json::value_t::number_integer: return Value(j.template get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      auto u = j.template get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        throw_error(fmt::format("integer {} is too large for the chat template renderer", u));
      return Value(static_cast<int64_t>(u));
    }
    case nlohmann::json::value_t::number_float: return Value(j.template get<double>());
    case nlohmann::json::value_t::string: return Value(j.template get<std::string>());
    case nlohmann::json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(from_json_impl(e));
      return Value::list(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      DictData d;
      d.items.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it) d.items.emplace_back(it.key(), from_json_impl(it.value()));
      return Value::dict(std::move(d));
    }
    default: throw_error("binary JSON values are not supported in chat templates");
  }
}

void dump_impl(const Value& v, const DumpOptions& o, int level, std::string& out);

void check_dump_size(const DumpOptions& o, const std::string& out) {
  if (out.size() > o.max_bytes) throw_error(fmt::format("the template produced a string longer than {} bytes", o.max_bytes));
}

void newline_indent(const DumpOptions& o, int level, std::string& out) {
  out.push_back('\n');
  for (int k = 0; k < level; ++k) {
    out += *o.indent;
    check_dump_size(o, out);
  }
}

void dump_impl(const Value& v, const DumpOptions& o, int level, std::string& out) {
  check_dump_size(o, out);  // separators come before each item
  switch (v.type()) {
    case Type::None: out += "null"; return;
    case Type::Bool: out += v.as_bool() ? "true" : "false"; return;
    case Type::Int: out += std::to_string(v.as_int()); return;
    case Type::Float: {
      double f = v.as_double();
      if (std::isnan(f)) {
        out += "NaN";
      } else if (std::isinf(f)) {
        out += f < 0 ? "-Infinity" : "Infinity";
      } else {
        out += py_float_repr(f);
      }
      return;
    }
    case Type::String: out += json_quote(v.str(), o.ensure_ascii); return;
    case Type::List: {
      const auto& items = v.items();
      if (items.empty()) {
        out += "[]";
        return;
      }
      out.push_back('[');
      if (o.indent) newline_indent(o, level + 1, out);
      for (size_t k = 0; k < items.size(); ++k) {
        if (k) {
          out += o.item_sep;
          if (o.indent) newline_indent(o, level + 1, out);
        }
        dump_impl(items[k], o, level + 1, out);
      }
      if (o.indent) newline_indent(o, level, out);
      out.push_back(']');
      return;
    }
    case Type::Dict: {
      const auto& d = v.dict().items;
      if (d.empty()) {
        out += "{}";
        return;
      }
      std::vector<const std::pair<std::string, Value>*> order;
      order.reserve(d.size());
      for (const auto& kv : d) order.push_back(&kv);
      if (o.sort_keys)
        std::stable_sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->first < b->first; });
      out.push_back('{');
      if (o.indent) newline_indent(o, level + 1, out);
      for (size_t k = 0; k < order.size(); ++k) {
        if (k) {
          out += o.item_sep;
          if (o.indent) newline_indent(o, level + 1, out);
        }
        out += json_quote(order[k]->first, o.ensure_ascii);
        out += o.key_sep;
        dump_impl(order[k]->second, o, level + 1, out);
      }
      if (o.indent) newline_indent(o, level, out);
      out.push_back('}');
      return;
    }
    default: throw_error(fmt::format("Object of type {} is not JSON serializable", v.type_name()));
  }
}

}  // namespace

int64_t float_to_int(double d) {
  if (std::isnan(d)) throw_error("cannot convert float NaN to integer");
  if (!(d >= -0x1p63 && d < 0x1p63))
    throw_error(fmt::format("cannot convert float {} to a 64-bit integer", std::isinf(d) ? (d < 0 ? "-inf" : "inf") : py_float_repr(d)));
  return static_cast<int64_t>(d);
}

Value from_json(const json& j) { return from_json_impl(j); }
Value from_json(const nlohmann::ordered_json& j) { return from_json_impl(j); }

std::string json_dumps(const Value& v, const DumpOptions& opts) {
  std::string out;
  dump_impl(v, opts, 0, out);
  return out;
}

std::string json_quote(std::string_view s, bool ensure_ascii) {
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('"');
  char buf[16];
  auto escape_u = [&](unsigned c) {
    std::snprintf(buf, sizeof buf, "\\u%04x", c);
    out += buf;
  };
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"': out += "\\\""; ++i; continue;
      case '\\': out += "\\\\"; ++i; continue;
      case '\n': out += "\\n"; ++i; continue;
      case '\r': out += "\\r"; ++i; continue;
      case '\t': out += "\\t"; ++i; continue;
      case '\b': out += "\\b"; ++i; continue;
      case '\f': out += "\\f"; ++i; continue;
      default: break;
    }
    if (c < 0x20) {
      escape_u(c);
      ++i;
      continue;
    }
    if (!ensure_ascii) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    if (c < 0x7F) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    // Decode one code point and escape it (surrogate pairs above the BMP).
    size_t start = i;
    size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    std::u32string cp = utf8_decode(s.substr(start, std::min(len, s.size() - start)));
    char32_t u = cp.empty() ? 0xFFFD : cp[0];
    i = start + std::min(len, s.size() - start);
    if (u >= 0x10000) {
      u -= 0x10000;
      escape_u(0xD800 | (u >> 10));
      escape_u(0xDC00 | (u & 0x3FF));
    } else {
      escape_u(u);
    }
  }
  out.push_back('"');
  return out;
}

}  // namespace pcm::jinja
