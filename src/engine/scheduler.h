// Scheduler: continuous batching over a fixed pool of sequence-state slots.
//
// Every Mamba-2 sequence needs the same fixed memory (one SequenceState), so the pool is allocated once
// and admission is exact: a request of n choices is admitted when n slots are free, else it waits in a
// bounded queue, else it is refused (the server answers 429). One engine thread owns the model and runs
// step() in a loop; HTTP threads only submit requests and read their events.
//
// One step:
//   1. drop cancelled sequences (a client that went away frees its slots here);
//   2. admit queued requests into free slots, FIFO, restoring the longest cached prefix of each prompt
//      from the StateCache (a full hit with stored logits skips the prefill entirely);
//   3. build one forward batch under the token budget: one row for every decoding sequence first (so
//      running streams keep flowing), then prefill chunks of admitted prompts in admission order. A chunk
//      that does not finish its prompt ends on a multiple of the model's SSD chunk size counted from where
//      its prefill started, so the scan is split where a single prefill would split it;
//   4. run it as one engine step (engine/engine.h: on the CPU one Mamba2Model::forward over all of it, on
//      CUDA a packed prefill plus a decode replayed from a CUDA graph), sampling the decode rows and
//      returning the logits after each completed prompt;
//   5. a completed prompt stores its state (+ logits) in the cache and is copied into the slots of its
//      other choices (n > 1 prefills once); each choice samples with its own seeded sampler, decodes text
//      incrementally, checks stop ids, stop strings (holding back text that may begin one) and max_tokens,
//      and emits an event;
//   6. a finished choice stores its state (prompt + generated tokens but the last) so the next turn of
//      the conversation reuses it, and frees its slot.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/engine.h"
#include "engine/sampler.h"
#include "engine/state_cache.h"
#include "model/model.h"

namespace pcm {

class Tokenizer;

struct SchedulerConfig {
  int64_t max_slots = 8;          // sequence states allocated up front
  int64_t max_queue = 64;         // admitted-but-waiting requests beyond the running ones
  int64_t max_batch_tokens = 0;   // tokens per forward step; 0 = the model's max_batch_tokens()
  size_t state_cache_bytes = 0;   // prompt-state cache budget; 0 = off
  bool cache_finished_turns = true;  // also store the state at the end of each finished (n = 1) answer

  // Slots that fit in `bytes` for states of `state_bytes` each, after `spare_states` the engine keeps beside them (the
  // CPU engine's embedding scratch state: 1; the CUDA engine: 0), at least 1 (else an error naming the budget), at
  // most kMaxSlotsFromMemory (as the CUDA engine's slots sized from free memory: a budget for a tiny model's states
  // was 10^6 slots, each request holding a server thread).
  static constexpr int64_t kMaxSlotsFromMemory = 1024;
  static int64_t slots_for_memory(double bytes, size_t state_bytes, int64_t spare_states = 1);
};

struct GenerationRequest {
  std::vector<int32_t> prompt;
  int64_t n = 1;
  int64_t max_tokens = 16;
  SamplingParams sampling;            // choice i samples with seed sampling.seed + i
  std::vector<int32_t> stop_ids;      // a sampled id in this list ends the choice (finish "stop"; its text is left out)
  std::vector<std::string> stop_strings;  // text up to (not including) the first match is returned
  bool skip_special = true;           // special tokens do not appear in the text
  // Prompt positions (ascending, 0 < p < prompt size) whose state is worth caching on its own, e.g. the
  // end of a system prompt shared by many conversations: a prefill chunk ends there and the state is
  // stored in the prompt-state cache (when it is on).
  std::vector<int64_t> cache_checkpoints;
};

// News about one choice: new text/tokens, and finish_reason once it is done ("stop", "length",
// "cancelled", "error").
struct ChoiceEvent {
  int64_t index = 0;
  std::string text;
  std::vector<int32_t> tokens;
  std::string finish_reason;
};

struct RequestUsage {
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;      // prompt tokens restored from the state cache instead of prefilled
  int64_t completion_tokens = 0;  // over all choices
};

struct RequestState;  // shared by the engine thread and the client; see scheduler.cpp

// The client's end of a submitted request. Destroying (or cancel()ing) an unfinished handle cancels the
// request: its slots are freed at the next step.
class RequestHandle {
 public:
  RequestHandle() = default;
  explicit RequestHandle(std::shared_ptr<RequestState> state) : state_(std::move(state)) {}
  RequestHandle(RequestHandle&&) = default;
  RequestHandle& operator=(RequestHandle&& other) noexcept;
  RequestHandle(const RequestHandle&) = delete;
  RequestHandle& operator=(const RequestHandle&) = delete;
  ~RequestHandle();

  explicit operator bool() const { return state_ != nullptr; }
  // Waits up to `timeout` for events and appends them to `out`. Returns true once every choice has
  // finished and all its events have been taken.
  bool poll(std::vector<ChoiceEvent>& out, std::chrono::milliseconds timeout);
  bool finished() const;
  void cancel();
  RequestUsage usage() const;
  uint64_t id() const;
  std::string error() const;  // why the engine failed the request ("" unless a choice ended with "error")

 private:
  std::shared_ptr<RequestState> state_;
};

enum class SubmitStatus { Accepted, QueueFull, ShuttingDown, Invalid };

struct SubmitResult {
  SubmitStatus status = SubmitStatus::Invalid;
  RequestHandle handle;
  std::string message;
};

// Fixed-bucket latency histogram (seconds), for Prometheus.
struct LatencyHistogram {
  std::vector<double> bounds;          // upper bounds, ascending; +Inf is implicit
  std::vector<int64_t> counts;         // per bucket (not cumulative), bounds.size() + 1
  double sum = 0.0;
  int64_t count = 0;
  explicit LatencyHistogram(std::vector<double> upper_bounds = {});
  void observe(double seconds);
};

// Mean-pooled, L2-normalised final hidden states (after norm_f) of each input, [inputs][hidden_size].
struct EmbeddingResult {
  std::vector<std::vector<float>> vectors;
  std::string error;  // non-empty when the engine failed
};

struct SchedulerStats {
  int64_t slots_total = 0, slots_used = 0, queue_depth = 0, running_requests = 0;
  int64_t requests_submitted = 0, requests_rejected = 0, requests_finished = 0, requests_cancelled = 0;
  int64_t prompt_tokens = 0;      // prompt tokens of admitted requests
  int64_t prefill_tokens = 0;     // prompt tokens actually run through the model
  int64_t cached_tokens = 0;      // prompt tokens restored from the cache
  int64_t generated_tokens = 0;
  int64_t embedding_inputs = 0, embedding_tokens = 0;
  int64_t steps = 0, step_rows = 0;
  int64_t prefix_cache_hits = 0, prefix_cache_misses = 0;
  StateCacheStats cache;
  size_t state_bytes = 0;
  LatencyHistogram ttft{}, itl{}, step_seconds{};
};

class Scheduler {
 public:
  // `tokenizer` may be null: events then carry tokens only and stop strings are refused.
  // On the CPU, over `model`:
  Scheduler(Mamba2Model& model, const Tokenizer* tokenizer, SchedulerConfig config);
  // Over any engine (e.g. make_cuda_engine); its slot pool is resized to config.max_slots.
  Scheduler(std::unique_ptr<InferenceEngine> engine, const Tokenizer* tokenizer, SchedulerConfig config);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Thread-safe. Refuses (Invalid) an empty prompt, out-of-vocabulary ids, n < 1 or n > max_slots,
  // max_tokens < 1, bad sampling parameters; QueueFull when the queue is at its bound; ShuttingDown after
  // close().
  SubmitResult submit(GenerationRequest request);

  // Thread-safe. Embeddings run on the engine thread at the start of the next step (one scratch state,
  // not a slot). Invalid for empty inputs or out-of-vocabulary ids; ShuttingDown after close().
  SubmitStatus submit_embeddings(std::vector<std::vector<int32_t>> inputs, std::future<EmbeddingResult>* result,
                                 std::string* message);

  // Runs the step loop on an engine thread until stop().
  void start();
  // Refuse new submissions from now on (in-flight and queued requests continue).
  void close();
  // Cancel every queued and running request.
  void cancel_all();
  // Waits until nothing is queued or running, up to `timeout`; true when idle.
  bool wait_idle(std::chrono::milliseconds timeout);
  // close(), cancel_all(), and joins the engine thread.
  void stop();

  // One scheduling step on the calling thread (for tests without start()). Returns false when there was
  // nothing to do.
  bool step();

  SchedulerStats stats() const;
  const SchedulerConfig& config() const { return config_; }
  int64_t max_batch_tokens() const { return budget_; }
  const Mamba2Config& model_config() const { return engine_.config(); }
  int64_t vocab_size() const { return vocab_; }
  const InferenceEngine& engine() const { return engine_; }
  // Slots not held by a running sequence (engine thread's view; for tests after the engine is idle).
  int64_t free_slots() const { return engine_.free_slot_count(); }

 private:
  struct Sequence;
  struct Active;
  void loop();
  bool is_cancelled(const RequestState& rs) const;
  void drop_cancelled();
  void admit();
  void emit(Sequence& seq, std::string text, int32_t token, const std::string& reason);
  // Ends a choice; `logits` (may be null) are those its last token was sampled from.
  void finish(Sequence& seq, const std::string& reason, const float* logits);
  // Records a sampled token: text, stop checks, events, finish.
  void accept_token(Sequence& seq, int32_t token, const float* logits, std::vector<double>& ttfts,
                    std::vector<double>& itls);
  // A prompt is fully prefilled: cache it, copy its state to the other choices, queue their samples.
  void on_prompt_done(Active& a, const float* logits, bool store);
  void release_finished();
  void run_embeddings();
  // Prompt-state cache through the engine's slots.
  StateCache::Hit cache_lookup(const std::vector<int32_t>& prompt, int32_t slot, std::vector<float>* logits);
  void cache_put(std::span<const int32_t> key, int32_t slot, std::span<const float> logits = {});
  void fail_all(const std::string& message);
  bool has_work_locked() const;

  std::unique_ptr<InferenceEngine> owned_engine_;
  InferenceEngine& engine_;
  const Tokenizer* tokenizer_;
  SchedulerConfig config_;
  int64_t budget_ = 0;
  int64_t vocab_ = 0;
  int64_t tokenizer_vocab_ = 0;

  // Engine-thread state.
  std::vector<std::unique_ptr<Active>> active_;
  StateCache cache_;
  SequenceState cache_scratch_;  // host copy of a slot for cache lookups/puts when slots live on a device
  EngineStep batch_;
  EngineOutput batch_out_;
  struct PendingSample {
    Sequence* seq;
    const float* logits;  // the row it is (or was) sampled from; null when it stayed on the device
    int32_t token;
  };
  std::vector<PendingSample> to_sample_;  // this step's sequences that sample a token
  size_t decode_cursor_ = 0;  // round-robin start when more sequences decode than fit in one step
  int64_t step_generated_ = 0;

  // Shared with submitters.
  mutable std::mutex mu_;
  std::condition_variable cv_;       // engine wakes on submit / cancel / stop
  std::condition_variable idle_cv_;  // wait_idle wakes when the engine goes idle
  std::deque<std::shared_ptr<RequestState>> queue_;
  struct EmbeddingJob {
    std::vector<std::vector<int32_t>> inputs;
    std::promise<EmbeddingResult> result;
  };
  std::deque<EmbeddingJob> embed_queue_;
  SequenceState embed_state_;
  bool closed_ = false, stopping_ = false;
  int64_t running_requests_ = 0;
  uint64_t next_id_ = 1;
  std::atomic<uint64_t> cancel_before_{0};  // requests with a smaller id are cancelled (cancel_all)
  SchedulerStats stats_;  // counters under mu_
  std::thread thread_;
};

}  // namespace pcm
