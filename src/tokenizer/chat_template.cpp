#include "tokenizer/chat_template.h"

#include <filesystem>

#include "io/gguf.h"
#include "tokenizer/jinja_interpreter.h"
#include "tokenizer/jinja_parser.h"
#include "util/error.h"
#include "util/file.h"

namespace pcm {

namespace {

namespace fs = std::filesystem;

// A special token as configs write it: "<s>" or {"content": "<s>", ...}.
std::string token_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v.at("content").is_string()) return v.at("content").get<std::string>();
  return "";
}

void special_tokens(const std::string& dir, std::string& bos, std::string& eos) {
  for (const char* file : {"tokenizer_config.json", "special_tokens_map.json"}) {
    std::string path = (fs::path(dir) / file).string();
    if (!fs::exists(path)) continue;
    json j = parse_json(read_text_file(path), path);
    if (bos.empty() && j.contains("bos_token")) bos = token_text(j.at("bos_token"));
    if (eos.empty() && j.contains("eos_token")) eos = token_text(j.at("eos_token"));
  }
}

// The template text and where it came from, or "" when the directory has none.
std::pair<std::string, std::string> find_template(const std::string& dir, const std::string& name) {
  std::string jinja_path = (fs::path(dir) / "chat_template.jinja").string();
  if (fs::exists(jinja_path) && name.empty()) return {read_text_file(jinja_path), jinja_path};
  std::string cfg_path = (fs::path(dir) / "tokenizer_config.json").string();
  if (!fs::exists(cfg_path)) return {"", ""};
  json cfg = parse_json(read_text_file(cfg_path), cfg_path);
  if (!cfg.contains("chat_template") || cfg.at("chat_template").is_null()) return {"", ""};
  const json& t = cfg.at("chat_template");
  if (t.is_string()) return {t.get<std::string>(), cfg_path + ": chat_template"};
  PCM_CHECK(t.is_array(), "{}: chat_template must be a string or a list of {{name, template}}", cfg_path);
  const std::string want = name.empty() ? "default" : name;
  std::string names;
  for (const auto& e : t) {
    PCM_CHECK(e.is_object() && e.contains("name") && e.at("name").is_string() && e.contains("template") &&
                  e.at("template").is_string(),
              "{}: chat_template entries must be {{\"name\", \"template\"}} objects", cfg_path);
    if (e.at("name") == want) return {e.at("template").get<std::string>(), cfg_path + ": chat_template '" + want + "'"};
    names += (names.empty() ? "" : ", ") + e.at("name").get<std::string>();
  }
  fail("{}: no chat template named '{}' (it has: {})", cfg_path, want, names);
}

void validate_messages(const json& messages) {
  PCM_CHECK(messages.is_array(), "messages must be an array, got {}", messages.type_name());
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    PCM_CHECK(m.is_object(), "messages[{}] must be an object", i);
    PCM_CHECK(m.contains("role") && m.at("role").is_string(), "messages[{}].role must be a string", i);
    if (!m.contains("content") || m.at("content").is_null()) continue;  // assistant tool calls may omit it
    const json& c = m.at("content");
    if (c.is_string()) continue;
    PCM_CHECK(c.is_array(), "messages[{}].content must be a string or a list of parts", i);
    for (size_t k = 0; k < c.size(); ++k)
      PCM_CHECK(c[k].is_object() && c[k].contains("type") && c[k].at("type") == "text" && c[k].contains("text") &&
                    c[k].at("text").is_string(),
                "messages[{}].content[{}]: only {{\"type\": \"text\", \"text\": ...}} parts are supported", i, k);
  }
}

}  // namespace

ChatTemplate ChatTemplate::from_source(const std::string& source, const std::string& origin, std::string bos_token,
                                       std::string eos_token) {
  ChatTemplate t;
  t.ast_ = jinja::parse_template(source, origin);
  t.bos_ = std::move(bos_token);
  t.eos_ = std::move(eos_token);
  t.origin_ = origin;
  return t;
}

ChatTemplate ChatTemplate::from_file(const std::string& path, std::string bos_token, std::string eos_token) {
  return from_source(read_text_file(path), path, std::move(bos_token), std::move(eos_token));
}

ChatTemplate ChatTemplate::load(const std::string& dir, const std::string& template_file) {
  if (template_file.empty()) return from_dir(dir);
  std::string bos, eos;
  if (is_gguf_path(dir)) {
    if (available(dir)) {
      ChatTemplate t = from_dir(dir);
      bos = t.bos_, eos = t.eos_;
    }
  } else if (fs::is_directory(dir)) {
    special_tokens(dir, bos, eos);
  }
  return from_file(template_file, bos, eos);
}

bool ChatTemplate::available(const std::string& dir) {
  if (is_gguf_path(dir)) return GgufFile(dir).has("tokenizer.chat_template");
  try {
    return !find_template(dir, "").first.empty();
  } catch (const Error&) {
    return false;
  }
}

ChatTemplate ChatTemplate::from_dir(const std::string& dir, const std::string& name) {
  if (is_gguf_path(dir)) {
    GgufFile f(dir);
    PCM_CHECK(f.has("tokenizer.chat_template"), "{}: no chat template (tokenizer.chat_template is missing)", dir);
    auto token = [&](const char* key) -> std::string {
      int64_t id = f.get_int_or(key, -1);
      const json& toks = f.metadata().contains("tokenizer.ggml.tokens") ? f.metadata().at("tokenizer.ggml.tokens") : json();
      return id >= 0 && toks.is_array() && id < static_cast<int64_t>(toks.size()) ? toks[static_cast<size_t>(id)].get<std::string>() : "";
    };
    return from_source(f.get_string("tokenizer.chat_template"), dir + ": tokenizer.chat_template",
                       token("tokenizer.ggml.bos_token_id"), token("tokenizer.ggml.eos_token_id"));
  }
  PCM_CHECK(fs::is_directory(dir), "model directory {} does not exist", dir);
  auto [source, origin] = find_template(dir, name);
  PCM_CHECK(!source.empty(), "{}: no chat template (no chat_template.jinja, and tokenizer_config.json has no chat_template)", dir);
  std::string bos, eos;
  special_tokens(dir, bos, eos);
  return from_source(source, origin, bos, eos);
}

std::string ChatTemplate::render(const json& messages, bool add_generation_prompt, const json& extra) const {
  validate_messages(messages);
  jinja::DictData ctx;
  ctx.set("messages", jinja::from_json(messages));
  ctx.set("add_generation_prompt", jinja::Value(add_generation_prompt));
  ctx.set("bos_token", jinja::Value(bos_));
  ctx.set("eos_token", jinja::Value(eos_));
  if (extra.is_object())
    for (const auto& [k, v] : extra.items()) ctx.set(k, jinja::from_json(v));
  jinja::Interpreter interp(ast_, jinja::Limits{});
  return interp.render(ctx);
}

}  // namespace pcm
