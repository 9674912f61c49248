// pcm synth: the PromptCoT data pipeline. `run` runs every stage; each stage is also its own subcommand.
// Ctrl-C stops taking new items, saves the finished ones and exits; rerunning resumes.
#include <csignal>
#include <cstdio>
#include <memory>

#include "cli/command.h"
#include "synth/pipeline.h"
#include "util/error.h"

namespace pcm::cli {
namespace {

std::atomic<bool> g_stop{false};

extern "C" void on_sigint(int) {
  if (g_stop.exchange(true)) std::_Exit(130);  // a second Ctrl-C quits at once
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
