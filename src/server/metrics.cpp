#include "server/metrics.h"

#include <fmt/format.h>

namespace pcm::server {
namespace {

void scalar(std::string& out, const char* name, const char* type, const char* help, double value) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, value);
}

void histogram(std::string& out, const char* name, const char* help, const LatencyHistogram& h) {
  out += fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  int64_t cumulative = 0;
  for (size_t i = 0; i < h.bounds.size(); ++i) {
    cumulative += h.counts[i];
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, h.bounds[i], cumulative);
  }
  cumulative += h.counts.empty() ? 0 : h.counts.back();
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, cumulative, name, h.sum, name,
                     h.count);
}

// Label values escape backslash, double quote and newline (exposition format).
std::string label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

std::string render_metrics(const SchedulerStats& s, const HttpCounters& http, const std::string& model_name) {
  std::string out;
  out += fmt::format("# HELP pcm_model_info The served model.\n# TYPE pcm_model_info gauge\npcm_model_info{{model=\"{}\"}} 1\n",
                     label(model_name));
  out += "# HELP pcm_http_requests_total HTTP requests answered, by endpoint and status.\n"
         "# TYPE pcm_http_requests_total counter\n";
  for (const auto& [key, n] : http.snapshot())
    out += fmt::format("pcm_http_requests_total{{endpoint=\"{}\",status=\"{}\"}} {}\n", label(key.first), key.second, n);
  scalar(out, "pcm_requests_submitted_total", "counter", "Generation requests accepted by the scheduler.",
         static_cast<double>(s.requests_submitted));
  scalar(out, "pcm_requests_rejected_total", "counter", "Generation requests refused (queue full or shutting down).",
         static_cast<double>(s.requests_rejected));
  scalar(out, "pcm_requests_finished_total", "counter", "Generation requests completed.",
         static_cast<double>(s.requests_finished));
  scalar(out, "pcm_requests_cancelled_total", "counter", "Generation requests cancelled (client gone or shutdown).",
         static_cast<double>(s.requests_cancelled));
  scalar(out, "pcm_prompt_tokens_total", "counter", "Prompt tokens of admitted requests.",
         static_cast<double>(s.prompt_tokens));
  scalar(out, "pcm_prefill_tokens_total", "counter", "Prompt tokens run through the model.",
         static_cast<double>(s.prefill_tokens));
  scalar(out, "pcm_cached_prompt_tokens_total", "counter", "Prompt tokens restored from the prompt-state cache.",
         static_cast<double>(s.cached_tokens));
  scalar(out, "pcm_generation_tokens_total", "counter", "Tokens generated.", static_cast<double>(s.generated_tokens));
  scalar(out, "pcm_embedding_inputs_total", "counter", "Inputs embedded.", static_cast<double>(s.embedding_inputs));
  scalar(out, "pcm_embedding_tokens_total", "counter", "Tokens embedded.", static_cast<double>(s.embedding_tokens));
  scalar(out, "pcm_engine_steps_total", "counter", "Scheduler steps (one model forward each).",
         static_cast<double>(s.steps));
  scalar(out, "pcm_engine_step_rows_total", "counter", "Token rows over all steps.", static_cast<double>(s.step_rows));
  scalar(out, "pcm_queue_depth", "gauge", "Requests waiting for a slot.", static_cast<double>(s.queue_depth));
  scalar(out, "pcm_running_requests", "gauge", "Requests holding slots.", static_cast<double>(s.running_requests));
  scalar(out, "pcm_slots_used", "gauge", "Sequence-state slots in use.", static_cast<double>(s.slots_used));
  scalar(out, "pcm_slots_total", "gauge", "Sequence-state slots allocated.", static_cast<double>(s.slots_total));
  scalar(out, "pcm_state_bytes_per_slot", "gauge", "Bytes of one sequence state.", static_cast<double>(s.state_bytes));
  scalar(out, "pcm_prefix_cache_hits_total", "counter", "Admissions that restored a cached prompt prefix.",
         static_cast<double>(s.prefix_cache_hits));
  scalar(out, "pcm_prefix_cache_misses_total", "counter", "Admissions with no cached prefix.",
         static_cast<double>(s.prefix_cache_misses));
  scalar(out, "pcm_state_cache_bytes", "gauge", "Bytes held by the prompt-state cache.",
         static_cast<double>(s.cache.bytes));
  scalar(out, "pcm_state_cache_budget_bytes", "gauge", "Budget of the prompt-state cache.",
         static_cast<double>(s.cache.budget));
  scalar(out, "pcm_state_cache_entries", "gauge", "Entries in the prompt-state cache.",
         static_cast<double>(s.cache.entries));
  scalar(out, "pcm_state_cache_evictions_total", "counter", "Prompt-state cache evictions.",
         static_cast<double>(s.cache.evictions));
  histogram(out, "pcm_time_to_first_token_seconds", "Time from submission to the first sampled token.", s.ttft);
  histogram(out, "pcm_inter_token_latency_seconds", "Time between consecutive tokens of one choice.", s.itl);
  histogram(out, "pcm_step_seconds", "Duration of one scheduler step.", s.step_seconds);
  return out;
}

}  // namespace pcm::server
