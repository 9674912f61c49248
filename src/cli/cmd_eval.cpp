// pcm eval: sampled evaluation on the shipped benchmarks (or a user's JSONL) against any
// OpenAI-compatible endpoint — ours, vLLM, llama.cpp's server — with samples.jsonl, resume and a report.
#include <cstdio>
#include <chrono>
#include <memory>
#include <optional>
#include <thread>

#include "cli/command.h"
#include "cli/common.h"
#include "cli/device_options.h"
#include "engine/cuda_engine.h"
#include "engine/scheduler.h"
#include "model/weights.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "eval/eval_run.h"
#include "synth/executor.h"
#include "synth/llm_client.h"
#include "util/error.h"
#include "util/file.h"
#include "util/memory_stats.h"

namespace pcm::cli {
namespace {

struct Options {
  eval::EvalOptions eval;
  std::string benches, endpoint, served_model, api_key_env, prompt_template_file, model, weights = "file";
  std::string random_shape, tokenizer_dir;  // load tests of the harness: random weights + a tokenizer
  bool completions = false;
  double timeout_s = 3600;
  int64_t max_slots = 16;
  int threads = 0;
  DeviceOptions device;
};

// In-process generation: every in-flight sample is a request to one continuous-batching scheduler, so
// all of them decode together in each step (the harness's worker threads only submit and wait).
eval::GenerationOutput engine_generate(Scheduler& scheduler, const Tokenizer& tok, const ChatTemplate* chat,
                                       const eval::EvalOptions& e, const std::string& user, uint64_t seed) {
  GenerationRequest req;
  const std::string text = chat ? chat->render(json::array({{{"role", "user"}, {"content", user}}}), true) : user;
  req.prompt = tok.encode(text, /*add_special_tokens=*/chat == nullptr);
  req.max_tokens = e.max_new_tokens;
  req.sampling.temperature = static_cast<float>(e.temperature);
  req.sampling.top_p = static_cast<float>(e.top_p);
  req.sampling.seed = seed;
  if (tok.eos_id() >= 0) req.stop_ids.push_back(tok.eos_id());
  SubmitResult sub;
  while (true) {  // the queue is bounded: wait for room rather than fail the sample
    sub = scheduler.submit(req);
    if (sub.status != SubmitStatus::QueueFull) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  PCM_CHECK(sub.status == SubmitStatus::Accepted, "pcm eval: the engine refused a request: {}", sub.message);
  eval::GenerationOutput out;
  std::vector<ChoiceEvent> events;
  while (true) {
    const bool done = sub.handle.poll(events, std::chrono::milliseconds(200));
    for (auto& ev : events) {
      out.text += ev.text;
      out.tokens += static_cast<int64_t>(ev.tokens.size());
      if (!ev.finish_reason.empty()) out.finish_reason = ev.finish_reason;
    }
    events.clear();
    if (done) break;
  }
  PCM_CHECK(out.finish_reason != "error", "pcm eval: generation failed: {}", sub.handle.error());
  return out;
}

std::string default_data_dir() {
#ifdef PCM_SOURCE_DIR
  return std::string(PCM_SOURCE_DIR) + "/data/benchmarks";
#else
  return "data/benchmarks";
#endif
}

void run(Options o) {
  PCM_CHECK(o.random_shape.empty() || (o.model.empty() && !o.tokenizer_dir.empty()),
            "pcm eval: --random-shape needs --tokenizer DIR and no --model");
  const bool in_process = !o.model.empty() || !o.random_shape.empty();
  PCM_CHECK(o.endpoint.empty() == in_process, "pcm eval: give either --model DIR (in-process) or --endpoint URL");
  PCM_CHECK(!in_process || !o.completions, "--completions is for --endpoint");
  PCM_CHECK(o.endpoint.empty() || !o.served_model.empty(), "pcm eval: --served-model is required with --endpoint");
  PCM_CHECK(in_process || o.device.device == "cpu", "pcm eval: --device is for --model (in-process generation)");
  for (size_t a = 0; a <= o.benches.size();) {
    size_t b = o.benches.find(',', a);
    if (b == std::string::npos) b = o.benches.size();
    if (b > a) o.eval.benches.push_back(o.benches.substr(a, b - a));
    a = b + 1;
  }
  PCM_CHECK(!o.eval.benches.empty(), "--bench: no benchmark named");
  if (o.eval.data_dir.empty()) o.eval.data_dir = default_data_dir();
  if (!o.prompt_template_file.empty()) o.eval.prompt_template = read_text_file(o.prompt_template_file);
  const auto& e = o.eval;
  eval::GenerateFn generate;
  std::unique_ptr<synth::LlmClient> client;
  std::unique_ptr<Mamba2Model> model;
  std::optional<Tokenizer> tokenizer;
  std::optional<ChatTemplate> chat;
  std::unique_ptr<Scheduler> scheduler;
  if (in_process) {
    apply_threads(o.threads);
    const bool cuda = o.device.cuda();
    PCM_CHECK(!cuda || o.weights == "file", "--weights q8_0 is a CPU option (--device cpu)");
    const std::string tok_dir = o.random_shape.empty() ? o.model : o.tokenizer_dir;
    const auto check_slots = [&](const Mamba2Config& c) {  // before the slots' states are made
      check_fits_in_memory(fmt::format("--max-slots {}", o.max_slots), o.max_slots,
                           static_cast<double>(c.state_bytes(false)), "states");
    };
    if (!cuda && !o.random_shape.empty()) {
      const Mamba2Config c = named_shape(o.random_shape);
      check_slots(c);  // and before its random weights
      model = std::make_unique<Mamba2Model>(c, random_mamba2_weights(c, DType::BF16, 1234));
    } else if (!cuda) {
      model = std::make_unique<Mamba2Model>(load_model(o.model, o.weights));
      check_slots(model->config());
    }
    tokenizer = Tokenizer::from_dir(tok_dir);
    if (ChatTemplate::available(tok_dir)) chat = ChatTemplate::from_dir(tok_dir);
    else std::fprintf(stderr, "pcm eval: %s has no chat template; prompts are sent as plain text\n", tok_dir.c_str());
    SchedulerConfig sc;
    sc.max_slots = o.max_slots;
    sc.max_queue = std::max<int64_t>(64, 2 * o.eval.concurrency);
    if (cuda) {
      CudaEngineOptions eo = o.device.engine_options(o.model);
      eo.shape = o.random_shape;
      eo.max_slots = o.max_slots;
      scheduler = std::make_unique<Scheduler>(make_cuda_engine(eo), &*tokenizer, sc);
    } else {
      scheduler = std::make_unique<Scheduler>(*model, &*tokenizer, sc);
    }
    scheduler->start();
    if (o.eval.concurrency < o.max_slots) o.eval.concurrency = static_cast<int>(o.max_slots);  // keep every slot busy
    generate = [&](const std::string& user, uint64_t seed) {
      return engine_generate(*scheduler, *tokenizer, chat ? &*chat : nullptr, e, user, seed);
    };
  } else {
    synth::EndpointConfig cfg;
    cfg.base_url = o.endpoint;
    cfg.api_key_env = o.api_key_env;
    cfg.read_timeout_s = o.timeout_s;
    client = std::make_unique<synth::LlmClient>(cfg);
    generate = [&](const std::string& user, uint64_t seed) {
      synth::SamplingOptions s;
      s.temperature = e.temperature;
      s.top_p = e.top_p;
      s.max_tokens = e.max_new_tokens;
      s.seed = static_cast<int64_t>(seed % (uint64_t{1} << 62));
      synth::CompletionResult r;
      if (o.completions)
        r = client->complete(synth::CompletionRequest{o.served_model, user, s});
      else
        r = client->chat(synth::ChatRequest{o.served_model, {{"user", user}}, s});
      PCM_CHECK(!r.choices.empty(), "{}: the response had no choices", o.endpoint);
      return eval::GenerationOutput{r.choices[0].text, r.choices[0].finish_reason, r.usage.completion_tokens};
    };
  }
  const auto t0 = std::chrono::steady_clock::now();
  json report = eval::run_eval(o.eval, generate);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (scheduler) {
    scheduler->stop();
    // Engine throughput over the run (issue 10: the harness must not be the bottleneck).
    const SchedulerStats st = scheduler->stats();
    std::fprintf(stderr, "engine (%s, %lld slots): %lld tokens generated in %.1f s wall = %.0f tokens/s, %lld steps\n",
                 scheduler->engine().device().c_str(), static_cast<long long>(st.slots_total),
                 static_cast<long long>(st.generated_tokens), wall, static_cast<double>(st.generated_tokens) / wall,
                 static_cast<long long>(st.steps));
  }
  std::printf("%s", read_text_file(o.eval.out_dir + "/report.md").c_str());
  std::fprintf(stderr, "samples: %s/samples.jsonl, report: %s/report.json\n", o.eval.out_dir.c_str(), o.eval.out_dir.c_str());
}

PCM_REGISTER_COMMAND({"eval", "Evaluate a model (in-process or served) on math/code benchmarks (pass@k, resumable)", [](CLI::App* sub) {
                        auto o = std::make_shared<Options>();
                        sub->add_option("--bench", o->benches,
                                        "comma-separated: math500,aime24,aime25,amc23,gsm8k,olympiadbench,minerva,humaneval or FILE.jsonl")
                            ->required();
                        sub->add_option("--format", o->eval.format, "math or code (for a FILE.jsonl bench)");
                        sub->add_option("--out", o->eval.out_dir, "run directory (samples.jsonl, report.json, report.md)")->required();
                        sub->add_option("--model,-m", o->model, "generate in-process with this model (continuous batching)");
                        sub->add_option("--max-slots", o->max_slots, "--model: sequences decoded together")
                            ->check(in_range(1, synth::kMaxConcurrency));  // each keeps a request in flight
                        sub->add_option("--random-shape", o->random_shape,
                                        "instead of --model: random bf16 weights of a named shape (codestral-7b, ...), "
                                        "to measure the harness and engine at that size");
                        sub->add_option("--tokenizer", o->tokenizer_dir, "with --random-shape: a tokenizer directory");
                        add_weights_option(sub, &o->weights);
                        add_threads_option(sub, &o->threads);
                        add_device_options(sub, &o->device);
                        sub->add_option("--endpoint", o->endpoint, "OpenAI-compatible base URL, e.g. http://127.0.0.1:8080/v1");
                        sub->add_option("--served-model", o->served_model, "model name to request");
                        sub->add_option("--api-key-env", o->api_key_env, "environment variable holding the API key");
                        sub->add_option("--concurrency", o->eval.concurrency, "requests in flight")
                            ->check(in_range(1, synth::kMaxConcurrency));
                        sub->add_flag("--completions", o->completions, "use /v1/completions with the raw prompt (no chat template)");
                        sub->add_option("--n", o->eval.n, "samples per problem")->check(positive());
                        sub->add_option("--temperature", o->eval.temperature, "sampling temperature");
                        sub->add_option("--top-p", o->eval.top_p, "nucleus sampling");
                        sub->add_option("--max-new-tokens", o->eval.max_new_tokens, "generation budget per sample");
                        sub->add_option("--seed", o->eval.seed, "base seed (each sample and retry derives its own)");
                        sub->add_flag("--think", o->eval.think, "require <think>...</think>answer; re-sample invalid outputs");
                        sub->add_option("--max-retries", o->eval.max_retries, "re-samples for an invalid format");
                        sub->add_option("--prompt-template", o->prompt_template_file, "file with {problem} replacing the instruction");
                        sub->add_option("--limit", o->eval.limit, "only the first N problems of each benchmark");
                        sub->add_flag("--resume", o->eval.resume, "continue a run: finished samples are kept, never redone");
                        sub->add_option("--data-dir", o->eval.data_dir, "where the shipped benchmarks are");
                        sub->add_option("--timeout", o->timeout_s, "seconds to wait for one response")
                            ->check(positive());
                        sub->callback([o] { run(*o); });
                      }});

}  // namespace
}  // namespace pcm::cli
