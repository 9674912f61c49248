#include "tokenizer/post_processor.h"

#include <sstream>

#include "util/error.h"

namespace pcm {

namespace {

using Item = PostProcessor::Item;

// TemplateProcessing's special_tokens: {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}
// (older files: a list of such objects).
std::vector<int32_t> special_ids(const json& specials, const std::string& name, const std::string& where) {
  auto read = [&](const json& entry) {
    PCM_CHECK(entry.is_object() && entry.contains("ids") && entry["ids"].is_array(),
              "{}.special_tokens[\"{}\"]: expected {{\"ids\": [...]}}", where, name);
    std::vector<int32_t> ids;
    for (const auto& v : entry["ids"]) {
      PCM_CHECK(v.is_number_integer() && v.get<int64_t>() >= 0, "{}.special_tokens[\"{}\"].ids: bad id {}", where, name,
                v.dump());
      ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
    }
    return ids;
  };
  if (specials.is_object()) {
    auto it = specials.find(name);
    PCM_CHECK(it != specials.end(), "{}: template uses special token \"{}\" missing from special_tokens", where, name);
    return read(*it);
  }
  if (specials.is_array()) {
    for (const auto& e : specials) {
      if (e.is_object() && e.value("id", std::string()) == name) return read(e);
    }
  }
  fail("{}: template uses special token \"{}\" missing from special_tokens", where, name);
}

// A template piece: "$A", "$B", "$", "$0", "<s>", optionally ":type_id"; or the JSON object form.
void parse_piece_string(const std::string& text, const json& specials, const std::string& where, std::vector<Item>& out) {
  std::string id = text.substr(0, text.find(':'));
  if (!id.empty() && id[0] == '$') {
    std::string rest = id.substr(1);
    PCM_CHECK(rest != "B" && rest != "b", "{}: the single-sequence template refers to sequence $B", where);
    bool ok = rest.empty() || rest == "A" || rest == "a" || rest.find_first_not_of("0123456789") == std::string::npos;
    PCM_CHECK(ok, "{}: cannot parse template piece \"{}\"", where, text);
    out.push_back({true, {}});
    return;
  }
  out.push_back({false, special_ids(specials, id, where)});
}

std::vector<Item> parse_template(const json& single, const json& specials, const std::string& where) {
  std::vector<Item> items;
  if (single.is_string()) {
    std::istringstream in(single.get<std::string>());
    std::string word;
    while (in >> word) parse_piece_string(word, specials, where, items);
    return items;
  }
  PCM_CHECK(single.is_array(), "{}.single: expected a list of pieces or a string", where);
  for (const auto& piece : single) {
    if (piece.is_string()) {
      parse_piece_string(piece.get<std::string>(), specials, where, items);
    } else if (piece.is_object() && piece.contains("Sequence")) {
      std::string id = piece["Sequence"].value("id", std::string("A"));
      PCM_CHECK(id == "A", "{}: the single-sequence template refers to sequence ${}", where, id);
      items.push_back({true, {}});
    } else if (piece.is_object() && piece.contains("SpecialToken")) {
      const json& st = piece["SpecialToken"];
      PCM_CHECK(st.contains("id") && st["id"].is_string(), "{}.single: SpecialToken needs a string \"id\"", where);
      items.push_back({false, special_ids(specials, st["id"].get<std::string>(), where)});
    } else {
      fail("{}.single: unknown template piece {}", where, piece.dump());
    }
  }
  return items;
}

int32_t pair_id(const json& spec, const char* key, const std::string& where) {
  PCM_CHECK(spec.contains(key) && spec[key].is_array() && spec[key].size() == 2 && spec[key][1].is_number_integer(),
            "{}.{}: expected [token, id]", where, key);
  return static_cast<int32_t>(spec[key][1].get<int64_t>());
}

}  // namespace

PostProcessor PostProcessor::from_json(const json& spec, const std::string& where) {
  PostProcessor p;
  if (spec.is_null()) return p;
  PCM_CHECK(spec.is_object() && spec.contains("type") && spec["type"].is_string(), "{}: missing \"type\"", where);
  const auto& type = spec["type"].get_ref<const std::string&>();
  if (type == "ByteLevel") return p;
  if (type == "TemplateProcessing") {
    PCM_CHECK(spec.contains("single"), "{}: TemplateProcessing needs \"single\"", where);
    p.items_ = parse_template(spec["single"], spec.value("special_tokens", json::object()), where);
    p.identity_ = false;
    return p;
  }
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    p.items_ = {{false, {pair_id(spec, "cls", where)}}, {true, {}}, {false, {pair_id(spec, "sep", where)}}};
    p.identity_ = false;
    return p;
  }
  if (type == "Sequence") {
    PCM_CHECK(spec.contains("processors") && spec["processors"].is_array(), "{}: Sequence needs a \"processors\" list",
              where);
    // Each processor wraps the output of the previous one.
    std::vector<Item> items = {{true, {}}};
    bool identity = true;
    size_t i = 0;
    for (const auto& child : spec["processors"]) {
      PostProcessor c = from_json(child, fmt::format("{}.processors[{}]", where, i++));
      if (c.identity_) continue;
      identity = false;
      std::vector<Item> next;
      for (const Item& outer : c.items_) {
        if (outer.is_sequence) next.insert(next.end(), items.begin(), items.end());
        else next.push_back(outer);
      }
      items.swap(next);
    }
    p.identity_ = identity;
    if (!identity) p.items_ = std::move(items);
    return p;
  }
  fail("{}: unsupported post-processor type \"{}\" (supported: TemplateProcessing, RobertaProcessing, BertProcessing, "
       "ByteLevel, Sequence)", where, type);
}

PostProcessor PostProcessor::bos_eos(int32_t bos, int32_t eos) {
  PostProcessor p;
  p.identity_ = false;
  if (bos >= 0) p.items_.push_back({false, {bos}});
  p.items_.push_back({true, {}});
  if (eos >= 0) p.items_.push_back({false, {eos}});
  return p;
}

void PostProcessor::apply(std::vector<int32_t>& ids) const {
  if (identity_) return;
  std::vector<int32_t> out;
  out.reserve(ids.size() + 4);
  for (const Item& item : items_) {
    if (item.is_sequence) out.insert(out.end(), ids.begin(), ids.end());
    else out.insert(out.end(), item.ids.begin(), item.ids.end());
  }
  ids.swap(out);
}

int32_t PostProcessor::bos_id() const {
  for (const Item& item : items_) {
    if (item.is_sequence) break;
    if (!item.ids.empty()) return item.ids.front();
  }
  return -1;
}

int32_t PostProcessor::eos_id() const {
  bool seen = false;
  for (const Item& item : items_) {
    if (item.is_sequence) {
      seen = true;
    } else if (seen && !item.ids.empty()) {
      return item.ids.front();
    }
  }
  return -1;
}

}  // namespace pcm
