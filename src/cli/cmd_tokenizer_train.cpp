// pcm tokenizer train: a byte-level BPE tokenizer from JSONL text, written as tokenizer.json +
// tokenizer_config.json + chat_template.jinja that HF tokenizers / transformers load.
#include <chrono>
#include <filesystem>
#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "cli/command.h"
#include "io/jsonl.h"
#include "tokenizer/bpe_trainer.h"
#include "util/error.h"
#include "util/file.h"

namespace pcm::cli {
namespace {

struct Options {
  std::vector<std::string> inputs;
  std::string fields = "text", out;
  int64_t vocab_size = 8192, min_frequency = 2, max_bytes = 0;
};

// The text of one row: each named field that is a string, or the contents of a messages array.
void collect_text(const json& row, const std::vector<std::string>& fields, std::string& out) {
  for (const auto& f : fields) {
    if (!row.contains(f)) continue;
    const json& v = row.at(f);
    if (v.is_string()) {
      out += v.get<std::string>();
      out += '\n';
    } else if (v.is_array()) {
      for (const auto& m : v)
        if (m.is_object() && m.contains("content") && m.at("content").is_string()) {
          out += m.at("content").get<std::string>();
          out += '\n';
        }
    }
  }
}

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

void run(const Options& o) {
  std::vector<std::string> fields;
  for (size_t a = 0; a <= o.fields.size();) {
    size_t b = o.fields.find(',', a);
    if (b == std::string::npos) b = o.fields.size();
    if (b > a) fields.push_back(o.fields.substr(a, b - a));
    a = b + 1;
  }
  PCM_CHECK(!fields.empty(), "--field: no field names given");
  BpeTrainerOptions opts;
  opts.vocab_size = o.vocab_size;
  opts.min_frequency = o.min_frequency;
  BpeTrainer trainer(opts);
  const double t0 = now();
  std::string text;
  int64_t rows = 0;
  bool stop = false;
  for (const auto& path : o.inputs) {
    if (stop) break;
    for_each_jsonl(path, [&](const json& row, int64_t line) {
      if (stop) return;
      PCM_CHECK(row.is_object(), "{}:{}: expected a JSON object", path, line);
      text.clear();
      collect_text(row, fields, text);
      trainer.add_text(text);
      ++rows;
      if (rows % 20000 == 0)
        std::fprintf(stderr, "\rcounting: %lld rows, %.1f MB, %.1f MB/s, %zu distinct words   ", static_cast<long long>(rows),
                     static_cast<double>(trainer.bytes_seen()) / 1e6, static_cast<double>(trainer.bytes_seen()) / 1e6 / (now() - t0),
                     trainer.distinct_words());
      if (o.max_bytes > 0 && trainer.bytes_seen() >= o.max_bytes) stop = true;
    });
  }
  PCM_CHECK(trainer.bytes_seen() > 0, "no text found in fields '{}' of the input files", o.fields);
  std::fprintf(stderr, "\rcounted %lld rows, %.1f MB in %.1f s, %zu distinct words\n", static_cast<long long>(rows),
               static_cast<double>(trainer.bytes_seen()) / 1e6, now() - t0, trainer.distinct_words());
  const double t1 = now();
  trainer.train([&](int64_t done, int64_t wanted) {
    const double el = now() - t1, rate = done / std::max(el, 1e-9);
    std::fprintf(stderr, "\rmerges %lld / %lld, %.0f merges/s, ETA %.0f s   ", static_cast<long long>(done),
                 static_cast<long long>(wanted), rate, rate > 0 ? static_cast<double>(wanted - done) / rate : 0.0);
  });
  std::fprintf(stderr, "\n%zu merges in %.1f s; vocabulary %zu\n", trainer.merges().size(), now() - t1, trainer.vocab().size());
  if (static_cast<int64_t>(trainer.vocab().size()) < o.vocab_size)
    std::fprintf(stderr, "note: stopped at %zu tokens: no pair occurs --min-frequency (%lld) times any more\n",
                 trainer.vocab().size(), static_cast<long long>(o.min_frequency));

  std::filesystem::create_directories(o.out);
  write_file_atomic(o.out + "/tokenizer.json", trainer.tokenizer_json().dump(2));
  const json config = {{"tokenizer_class", "PreTrainedTokenizerFast"},
                       {"bos_token", nullptr},
                       {"eos_token", "<|im_end|>"},
                       {"pad_token", "<|endoftext|>"},
                       {"unk_token", nullptr},
                       {"add_bos_token", false},
                       {"add_eos_token", false},
                       {"clean_up_tokenization_spaces", false},
                       {"model_max_length", 1048576},
                       {"chat_template", chatml_think_template()}};
  write_file_atomic(o.out + "/tokenizer_config.json", config.dump(2));
  write_file_atomic(o.out + "/special_tokens_map.json",
                    json{{"eos_token", "<|im_end|>"}, {"pad_token", "<|endoftext|>"}}.dump(2));
  write_file_atomic(o.out + "/chat_template.jinja", chatml_think_template());
  std::printf("%s\n", o.out.c_str());
}

PCM_REGISTER_COMMAND({"tokenizer", "Train a tokenizer", [](CLI::App* sub) {
                        sub->require_subcommand(1);
                        CLI::App* train = sub->add_subcommand("train", "Train a byte-level BPE tokenizer on JSONL text");
                        auto o = std::make_shared<Options>();
                        train->add_option("--in", o->inputs, "JSONL files")->required()->check(CLI::ExistingFile);
                        train->add_option("--field", o->fields,
                                          "comma-separated fields holding text (string fields, or messages arrays)");
                        train->add_option("--vocab-size", o->vocab_size, "vocabulary size, special tokens included");
                        train->add_option("--min-frequency", o->min_frequency, "never merge a pair seen fewer times");
                        train->add_option("--max-bytes", o->max_bytes, "stop reading after this many bytes of text");
                        train->add_option("--out", o->out, "output directory")->required();
                        train->callback([o] { run(*o); });
                      }});

}  // namespace
}  // namespace pcm::cli
