// pcm synth: the PromptCoT data pipeline. `run` runs every stage; each stage is also its own subcommand.
// Ctrl-C stops taking new items, saves the finished ones and exits; rerunning resumes.
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>

#include <unistd.h>

#include "cli/command.h"
#include "cli/synth_compose_cli.h"
#include "io/jsonl.h"
#include "synth/pipeline.h"
#include "util/json.h"
#include "util/error.h"

namespace pcm::cli {
namespace {

std::atomic<bool> g_stop{false};

extern "C" void on_sigint(int) {
  if (g_stop.exchange(true)) std::_Exit(130);  // a second Ctrl-C quits at once
  // Said at once (write(2) is async-signal-safe), since in-flight requests may take minutes to finish.
  static const char kNotice[] = "interrupt: finishing the items in flight, then saving (Ctrl-C again quits now)\n";
  ssize_t written = write(STDERR_FILENO, kNotice, sizeof(kNotice) - 1);
  (void)written;
}

struct Options {
  std::string config, out, from, to;
  bool quiet = false;
};

int run(const Options& o, const std::string& stage) {
  synth::SynthConfig cfg = o.config.empty() ? synth::default_synth_config() : synth::load_synth_config(o.config);
  synth::RunContext ctx(cfg, o.out);
  ctx.stop = &g_stop;
  ctx.progress = !o.quiet;
  std::signal(SIGINT, on_sigint);
  std::signal(SIGTERM, on_sigint);
  auto matcher = synth::default_answer_matcher();
  try {
    if (stage.empty()) synth::run_pipeline(ctx, *matcher, o.from, o.to);
    else synth::run_stage(ctx, stage, *matcher);
  } catch (const synth::Interrupted& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 130;
  } catch (const synth::IncompleteStage& e) {
    std::fprintf(stderr, "incomplete: %s\n", e.what());
    return 2;
  }
  return 0;
}

// Per-stage counts and tokens of an output directory; safe while a run is appending (torn tails are skipped).
void status(const std::string& out) {
  PCM_CHECK(std::filesystem::is_directory(out), "{}: no such directory", out);
  const std::pair<const char*, const char*> stages[] = {
      {"concepts", synth::files::kConcepts}, {"embed", synth::files::kEmbeddings}, {"sample", synth::files::kSamples},
      {"generate", synth::files::kProblems}, {"judge", synth::files::kJudgements}, {"filter", synth::files::kFiltered},
      {"solve", synth::files::kSolutions}};
  std::printf("%-9s %8s %8s %8s  drop reasons\n", "stage", "rows", "ok", "dropped");
  for (const auto& [name, file] : stages) {
    std::string path = out + "/" + file;
    if (!std::filesystem::exists(path)) continue;
    nlohmann::json c = synth::stage_counts(path);
    std::string reasons;
    for (const auto& [k, v] : c["reasons"].items()) reasons += (reasons.empty() ? "" : ", ") + k + " " + v.dump();
    std::printf("%-9s %8lld %8lld %8lld  %s\n", name, c["rows"].get<long long>(), c["ok"].get<long long>(),
                c["dropped"].get<long long>(), reasons.c_str());
  }
  std::string train = out + "/" + synth::files::kTrain;
  if (std::filesystem::exists(train)) std::printf("%-9s %8zu\n", "export", read_jsonl(train).size());
  std::string stats = out + "/" + synth::files::kStats;
  if (std::filesystem::exists(stats)) {
    nlohmann::json j = read_json_file(stats);
    std::printf("\n%-14s %9s %9s %8s %14s %14s\n", "role", "requests", "failures", "retries", "prompt tok", "completion tok");
    for (const auto& [role, u] : j["tokens"].items())
      std::printf("%-14s %9lld %9lld %8lld %14lld %14lld\n", role.c_str(), u.value("requests", 0LL),
                  u.value("failures", 0LL), u.value("retries", 0LL), u.value("prompt_tokens", 0LL),
                  u.value("completion_tokens", 0LL));
  }
}

void add_common(CLI::App* sub, Options* o) {
  sub->add_option("--config,-c", o->config, "synth TOML config (default: built-in defaults, pcm serve endpoints)")
      ->check(CLI::ExistingFile);
  sub->add_option("--out,-o", o->out, "output directory (stage files, stats.json)")->required();
  sub->add_flag("--quiet,-q", o->quiet, "no progress lines");
}

PCM_REGISTER_COMMAND({"synth", "Synthesize PromptCoT training data against OpenAI-compatible endpoints",
                      [](CLI::App* app) {
                        app->require_subcommand(1);
                        {
                          auto o = std::make_shared<Options>();
                          CLI::App* sub = app->add_subcommand("run", "Run the stages in order (resumable)");
                          add_common(sub, o.get());
                          sub->add_option("--from", o->from, "first stage to run (default: concepts)");
                          sub->add_option("--to", o->to, "last stage to run (default: export)");
                          sub->callback([o] {
                            int rc = run(*o, "");
                            if (rc != 0) std::exit(rc);
                          });
                        }
                        {
                          auto out = std::make_shared<std::string>();
                          CLI::App* sub = app->add_subcommand("status", "Counts, drop reasons and tokens of an output directory");
                          sub->add_option("--out,-o", *out, "output directory")->required();
                          sub->callback([out] { status(*out); });
                        }
                        add_compose_subcommands(app);
                        const char* help[] = {
                            "Extract foundational concepts from seed problems",
                            "Embed each distinct concept (/v1/embeddings)",
                            "Sample concept lists and difficulty levels",
                            "Generate rationale + problem for each concept list",
                            "Rate each problem with every judge",
                            "Keep judged-best problems; remove near-duplicates and benchmark matches",
                            "Solve kept problems with the teacher (<think> + \\boxed{})",
                            "Write train.jsonl ({\"messages\": [...]}) and data_card.json"};
                        for (size_t i = 0; i < synth::stage_names().size(); ++i) {
                          std::string name = synth::stage_names()[i];
                          auto o = std::make_shared<Options>();
                          CLI::App* sub = app->add_subcommand(name, help[i]);
                          add_common(sub, o.get());
                          sub->callback([o, name] {
                            int rc = run(*o, name);
                            if (rc != 0) std::exit(rc);
                          });
                        }
                      }});

}  // namespace
}  // namespace pcm::cli
