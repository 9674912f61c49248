// Chat templates rendered exactly as transformers' apply_chat_template (the fixture references), the
// Jinja constructs real templates use, template discovery, and clear errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "io/jsonl.h"
#include "test_util.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace pcm {
namespace {

using test::testdata;

class ChatReference : public ::testing::TestWithParam<std::string> {};

TEST_P(ChatReference, EveryRecordRendersExactlyAndEncodesToTheReferenceIds) {
  const std::string dir = testdata("tokenizers/" + GetParam());
  ChatTemplate chat = ChatTemplate::from_dir(dir);
  Tokenizer tok = Tokenizer::from_dir(dir);
  int checked = 0;
  for (const auto& r : read_jsonl(dir + "/reference.jsonl")) {
    if (r.at("kind") != "chat") continue;
    ChatTemplate t = r.value("template", "") == "reasoning"
                         ? ChatTemplate::from_file(dir + "/reasoning_template.jinja", chat.bos_token(), chat.eos_token())
                         : chat;
    const bool gen = r.at("add_generation_prompt").get<bool>();
    if (r.contains("error")) {
      try {
        t.render(r.at("messages"), gen);
        ADD_FAILURE() << "expected an error: " << r.at("error");
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(r.at("error").get<std::string>()), std::string::npos) << e.what();
      }
      continue;
    }
    const std::string rendered = t.render(r.at("messages"), gen);
    EXPECT_EQ(rendered, r.at("rendered").get<std::string>()) << r.at("messages").dump();
    if (r.contains("ids")) {
      EXPECT_EQ(tok.encode(rendered, false), r.at("ids").get<std::vector<int32_t>>());
    }
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, ChatReference, ::testing::Values("gpt-neox", "mistral-v3", "mistral-v3-metaspace"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) if (c == '-') c = '_';
                           return n;
                         });

std::string render(const std::string& source, const json& messages = json::array(), bool gen = false,
                   const json& extra = json::object()) {
  return ChatTemplate::from_source(source, "t.jinja", "<s>", "</s>").render(messages, gen, extra);
}

TEST(Jinja, ConstructsRealTemplatesUse) {
  const json msgs = json::parse(R"([{"role":"system","content":" Be brief. "},{"role":"user","content":"Hi"},
                                   {"role":"assistant","content":"<think>x</think>Hello"}])");
  EXPECT_EQ(render("{% for m in messages %}{{ loop.index }}{{ m.role[0] }}{% if not loop.last %},{% endif %}{% endfor %}", msgs),
            "1s,2u,3a");
  EXPECT_EQ(render("{{ messages[0]['content'] | trim }}|{{ messages | length }}", msgs), "Be brief.|3");
  EXPECT_EQ(render("{{ messages[2].content.split('</think>')[-1] }}", msgs), "Hello");
  EXPECT_EQ(render("{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}", msgs), "3");
  EXPECT_EQ(render("{{ messages[1:] | map(attribute='role') | join(',') }}", msgs), "user,assistant");
  EXPECT_EQ(render("{{ messages | selectattr('role', 'equalto', 'user') | list | length }}", msgs), "1");
  EXPECT_EQ(render("{{ 'abc'[::-1] }}{{ 'X' ~ 1 }}{{ 'a' in 'cat' }}", msgs), "cbaX1True");
  EXPECT_EQ(render("{{ {'a': 'é', 'b': [1, 2.5, none, true]} | tojson }}", msgs), R"({"a": "é", "b": [1, 2.5, null, true]})");
  EXPECT_EQ(render("{{ x | tojson(indent=2) }}", msgs, false, json{{"x", json{{"k", 1}}}}), "{\n  \"k\": 1\n}");
  EXPECT_EQ(render("{{ bos_token }}{% if add_generation_prompt %}A:{% endif %}{{ eos_token }}", msgs, true), "<s>A:</s>");
  EXPECT_EQ(render("{% if y is defined %}d{% elif x is none %}n{% else %}e{% endif %}", msgs, false, json{{"x", nullptr}}), "n");
  EXPECT_EQ(render("{{ 'Hi'.upper() }}{{ 'Hi' | lower }}{{ ' a '.strip() }}{{ 'ab'.startswith('a') }}", msgs), "HIhiaTrue");
  EXPECT_EQ(render("{%- for i in range(3) -%}\n  {{ i }}\n{%- endfor %}", msgs), "012");
  EXPECT_EQ(render("{% macro f(x) %}[{{ x }}]{% endmacro %}{{ f('a') }}", msgs), "[a]");
  EXPECT_EQ(render("{{ x.get('a', 'z') }}{{ x.get('q', 'z') }}", msgs, false, json{{"x", json{{"a", "y"}}}}), "yz");
}

TEST(Jinja, RaiseExceptionAndUnsupportedConstructsAreClearErrors) {
  try {
    render("{{ raise_exception('Conversation roles must alternate') }}");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Conversation roles must alternate"), std::string::npos) << e.what();
  }
  try {
    render("line one\n{{ messages | urlize }}");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("urlize"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("t.jinja:2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(render("{% for x in y %}"), Error);  // unclosed block
  EXPECT_THROW(render("{{ messages.append(1) }}"), Error);
}

TEST(ChatTemplateDiscovery, TokenizerConfigStringAndNamedListAndMessageErrors) {
  test::TempDir dir;
  std::ofstream(dir.file("tokenizer_config.json"))
      << R"({"bos_token": {"content": "<s>"}, "eos_token": "</s>", "chat_template": [
             {"name": "default", "template": "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}"},
             {"name": "tool_use", "template": "T"}]})";
  EXPECT_TRUE(ChatTemplate::available(dir.path()));
  const json msgs = json::parse(R"([{"role":"user","content":[{"type":"text","text":"a"}]}])");
  EXPECT_EQ(ChatTemplate::from_dir(dir.path()).render(json::parse(R"([{"role":"user","content":"hi"}])"), false), "<s>hi");
  EXPECT_EQ(ChatTemplate::from_dir(dir.path(), "tool_use").render(msgs, false), "T");
  EXPECT_THROW(ChatTemplate::from_dir(dir.path(), "nope"), Error);
  EXPECT_THROW(ChatTemplate::from_dir(dir.path()).render(json::parse(R"([{"content":"x"}])"), false), Error);
  EXPECT_THROW(ChatTemplate::from_dir(dir.path()).render(json::parse(R"({"role":"user"})"), false), Error);
  // A part's type of another JSON type is the same clear error as an unknown type (it threw nlohmann's type_error).
  try {
    ChatTemplate::from_dir(dir.path()).render(json::parse(R"([{"role":"user","content":[{"type":5,"text":"a"}]}])"), false);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("messages[0].content[0]: only"), std::string::npos) << e.what();
  }
  // A named template whose name is not a string: an error naming the file (it threw nlohmann's type_error).
  test::TempDir bad_names;
  std::ofstream(bad_names.file("tokenizer_config.json")) << R"({"chat_template": [{"name": 7, "template": "T"}]})";
  try {
    ChatTemplate::from_dir(bad_names.path());
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer_config.json: chat_template entries must be"), std::string::npos)
        << e.what();
  }
  test::TempDir empty;
  EXPECT_FALSE(ChatTemplate::available(empty.path()));
  EXPECT_THROW(ChatTemplate::from_dir(empty.path()), Error);
}

TEST(ChatTemplateDiscovery, GgufChatTemplateWhenPresent) {
  // The fixture GGUF from llama.cpp's converter carries the Mistral template of its tokenizer directory.
  const std::string g = testdata("gguf/tiny-mistral-bf16.gguf");
  if (!ChatTemplate::available(g)) GTEST_SKIP() << "this GGUF has no tokenizer.chat_template";
  ChatTemplate t = ChatTemplate::from_dir(g);
  EXPECT_EQ(t.render(json::parse(R"([{"role":"user","content":"hi"}])"), true),
            ChatTemplate::from_dir(testdata("models/tiny-mistral-bf16")).render(json::parse(R"([{"role":"user","content":"hi"}])"), true));
}

}  // namespace
}  // namespace pcm
