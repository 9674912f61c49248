// pcm tokenize: text -> ids (comma-separated, one line) or, with --decode, ids -> text, using the
// model directory's tokenizer.json (or tokenizer.model).
#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>

#include "cli/command.h"
#include "cli/common.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/file.h"
#include "util/json.h"

namespace pcm::cli {
namespace {

struct Options {
  std::string model, text, file, decode;
  bool add_special = false, skip_special = false, split_special = false, show_tokens = false;
  CLI::Option *text_opt = nullptr, *file_opt = nullptr, *decode_opt = nullptr;
};

void run(const Options& o) {
  size_t sources = o.text_opt->count() + o.file_opt->count() + o.decode_opt->count();
  PCM_CHECK(sources == 1, "give exactly one of --text, --file or --decode");
  std::string dir = o.model.empty() ? default_model_dir() : o.model;
  PCM_CHECK(!dir.empty(), "no --model given and no shipped model found");
  Tokenizer tok = Tokenizer::from_dir(dir);
  if (o.decode_opt->count()) {
    std::vector<int32_t> ids = parse_id_list(o.decode, "--decode");
    std::string text = tok.decode(ids, o.skip_special);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
    return;
  }
  std::string text;
  if (o.file_opt->count()) {
    text = read_text_file(o.file);
  } else if (o.text == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    text = o.text;
  }
  std::vector<int32_t> ids = tok.encode(text, o.add_special, !o.split_special);
  if (!o.show_tokens) {
    std::printf("%s\n", join_ids(ids).c_str());
    return;
  }
  // One token a line: its id and its vocabulary string, JSON-quoted so that spaces and control
  // characters stay visible.
  for (int32_t id : ids) std::printf("%d\t%s\n", id, json(tok.id_to_token(id)).dump().c_str());
}

PCM_REGISTER_COMMAND({"tokenize", "Encode text to token ids, or decode ids to text (Hugging Face-exact)",
                      [](CLI::App* sub) {
                        auto o = std::make_shared<Options>();
                        sub->add_option("--model,-m", o->model,
                                        "model directory with tokenizer.json or tokenizer.model (default: the "
                                        "shipped model)");
                        o->text_opt = sub->add_option("--text", o->text, "text to encode (\"-\" reads standard input)");
                        o->file_opt = sub->add_option("--file", o->file, "file whose contents to encode");
                        o->decode_opt = sub->add_option("--decode", o->decode, "comma-separated ids to decode");
                        sub->add_flag("--add-special", o->add_special,
                                      "add the post-processor's special tokens (e.g. BOS) when encoding");
                        sub->add_flag("--split-special", o->split_special,
                                      "encode the text of special tokens (\"<s>\", \"[INST]\") as ordinary text");
                        sub->add_flag("--show-tokens", o->show_tokens,
                                      "print one token a line: id and vocabulary string");
                        sub->add_flag("--skip-special", o->skip_special, "leave special tokens out when decoding");
                        sub->callback([o] { run(*o); });
                      }});

}  // namespace
}  // namespace pcm::cli
