#include "engine/scheduler.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include <omp.h>

#include "engine/cpu_engine.h"
#include "engine/scheduler_request_state.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace pcm {

using Clock = SchedulerClock;

namespace {
double seconds_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

std::vector<double> ttft_bounds() { return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}; }
std::vector<double> itl_bounds() { return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}; }
}  // namespace

// ---------------------------------------------------------------------------------------------------------
struct Scheduler::Sequence {
  Active* owner = nullptr;
  int64_t index = 0;
  int32_t slot = -1;
  std::unique_ptr<StreamDecoder> decoder;
  std::string held;  // decoded text not yet emitted (it may begin a stop string)
  std::vector<int32_t> generated;
  int32_t pending = -1;  // sampled, not yet fed to the model
  bool decoding = false;
  bool done = false;
  Clock::time_point last_token;
};

struct Scheduler::Active {
  std::shared_ptr<RequestState> rs;
  std::vector<Sequence> seqs;
  int64_t prefill_pos = 0;   // next prompt token to feed (into seqs[0]'s slot)
  int64_t prefill_base = 0;  // where this prefill started (chunk alignment is counted from here)
  bool prompt_done = false;
  bool ready = false;        // a cache hit covered the whole prompt, with logits: no prefill
  std::vector<float> ready_logits;
  bool first_token = false;
};

Scheduler::Scheduler(Mamba2Model& model, const Tokenizer* tokenizer, SchedulerConfig config)
    : Scheduler(std::make_unique<CpuEngine>(model), tokenizer, config) {}

Scheduler::Scheduler(std::unique_ptr<InferenceEngine> engine, const Tokenizer* tokenizer, SchedulerConfig config)
    : owned_engine_(std::move(engine)), engine_(*owned_engine_), tokenizer_(tokenizer), config_(config),
      cache_(config.state_cache_bytes) {
  PCM_CHECK(config_.max_slots >= 1, "max_slots must be >= 1, got {}", config_.max_slots);
  PCM_CHECK(config_.max_queue >= 0, "max_queue must be >= 0, got {}", config_.max_queue);
  if (config_.max_batch_tokens > 0) engine_.set_max_batch_tokens(config_.max_batch_tokens);
  budget_ = engine_.max_batch_tokens();
  vocab_ = engine_.vocab_size();
  tokenizer_vocab_ = tokenizer_ ? static_cast<int64_t>(tokenizer_->vocab_size()) : 0;
  engine_.set_slot_count(config_.max_slots);
  embed_state_ = engine_.new_host_state();
  if (cache_.enabled()) cache_scratch_ = engine_.new_host_state();
  stats_.slots_total = config_.max_slots;
  stats_.state_bytes = engine_.state_bytes();
  stats_.ttft = LatencyHistogram(ttft_bounds());
  stats_.itl = LatencyHistogram(itl_bounds());
  stats_.step_seconds = LatencyHistogram(itl_bounds());
}

Scheduler::~Scheduler() { stop(); }

SubmitResult Scheduler::submit(GenerationRequest request) {
  SubmitResult result;
  auto invalid = [&](std::string message) {
    result.status = SubmitStatus::Invalid;
    result.message = std::move(message);
    return std::move(result);
  };
  if (request.prompt.empty()) return invalid("the prompt is empty: at least one token is needed");
  for (int32_t t : request.prompt)
    if (t < 0 || t >= vocab_) return invalid(fmt::format("token id {} is outside the vocabulary (size {})", t, vocab_));
  if (request.n < 1 || request.n > config_.max_slots)
    return invalid(fmt::format("n must be between 1 and {} (the server's slots), got {}", config_.max_slots, request.n));
  if (request.max_tokens < 1) return invalid(fmt::format("max_tokens must be >= 1, got {}", request.max_tokens));
  if (!request.stop_strings.empty() && !tokenizer_) return invalid("stop strings need a tokenizer");
  for (size_t i = 0; i < request.cache_checkpoints.size(); ++i) {
    const int64_t p = request.cache_checkpoints[i];
    if (p <= 0 || p >= static_cast<int64_t>(request.prompt.size()) || (i > 0 && p <= request.cache_checkpoints[i - 1]))
      return invalid(fmt::format("cache checkpoint {} is not an ascending position inside the prompt", p));
  }
  try {
    request.sampling.validate();
  } catch (const Error& e) {
    return invalid(e.what());
  }
  auto rs = std::make_shared<RequestState>();
  rs->req = std::move(request);
  rs->submitted = Clock::now();
  rs->usage.prompt_tokens = static_cast<int64_t>(rs->req.prompt.size());
  {
    std::lock_guard lock(mu_);
    if (closed_) {
      ++stats_.requests_rejected;
      result.status = SubmitStatus::ShuttingDown;
      result.message = "the server is shutting down";
      return result;
    }
    // Requests that free slots can take at once do not count against the queue bound.
    const int64_t free_now = config_.max_slots - stats_.slots_used;
    if (static_cast<int64_t>(queue_.size()) >= config_.max_queue + std::max<int64_t>(free_now, 0)) {
      ++stats_.requests_rejected;
      result.status = SubmitStatus::QueueFull;
      result.message = fmt::format("all {} slots are busy and {} requests are queued", config_.max_slots,
                                   queue_.size());
      return result;
    }
    rs->id = next_id_++;
    queue_.push_back(rs);
    ++stats_.requests_submitted;
  }
  cv_.notify_all();
  result.status = SubmitStatus::Accepted;
  result.handle = RequestHandle(rs);
  return result;
}

void Scheduler::start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  // OpenMP's thread count is per thread: the engine thread uses the caller's (e.g. from --threads).
  const int omp_threads = omp_get_max_threads();
  thread_ = std::thread([this, omp_threads] {
    omp_set_num_threads(omp_threads);
    loop();
  });
}

void Scheduler::close() {
  std::lock_guard lock(mu_);
  closed_ = true;
}

void Scheduler::cancel_all() {
  {
    std::lock_guard lock(mu_);
    cancel_before_ = next_id_;
  }
  cv_.notify_all();
}

bool Scheduler::has_work_locked() const {
  return !queue_.empty() || !embed_queue_.empty() || running_requests_ > 0;
}

SubmitStatus Scheduler::submit_embeddings(std::vector<std::vector<int32_t>> inputs,
                                          std::future<EmbeddingResult>* result, std::string* message) {
  if (inputs.empty()) {
    *message = "no input to embed";
    return SubmitStatus::Invalid;
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].empty()) {
      *message = fmt::format("input {} is empty: at least one token is needed", i);
      return SubmitStatus::Invalid;
    }
    for (int32_t t : inputs[i])
      if (t < 0 || t >= vocab_) {
        *message = fmt::format("input {}: token id {} is outside the vocabulary (size {})", i, t, vocab_);
        return SubmitStatus::Invalid;
      }
  }
  {
    std::lock_guard lock(mu_);
    if (closed_) {
      *message = "the server is shutting down";
      return SubmitStatus::ShuttingDown;
    }
    if (static_cast<int64_t>(embed_queue_.size()) >= std::max<int64_t>(config_.max_queue, 1)) {
      *message = fmt::format("{} embedding requests are already queued", embed_queue_.size());
      return SubmitStatus::QueueFull;
    }
    embed_queue_.push_back(EmbeddingJob{std::move(inputs), {}});
    *result = embed_queue_.back().result.get_future();
  }
  cv_.notify_all();
  return SubmitStatus::Accepted;
}

void Scheduler::run_embeddings() {
  std::deque<EmbeddingJob> jobs;
  {
    std::lock_guard lock(mu_);
    jobs.swap(embed_queue_);
  }
  if (jobs.empty()) return;
  const int64_t d = engine_.config().hidden_size;
  std::vector<float> hidden;
  int64_t inputs = 0, tokens = 0;
  for (EmbeddingJob& job : jobs) {
    EmbeddingResult r;
    try {
      for (const auto& in : job.inputs) {
        const int64_t T = static_cast<int64_t>(in.size());
        embed_state_.reset();
        std::vector<double> mean(static_cast<size_t>(d), 0.0);
        // Piece by piece (the state carries over), so the buffer stays one step's worth of rows.
        for (int64_t start = 0; start < T; start += budget_) {
          const int64_t len = std::min(budget_, T - start);
          hidden.resize(static_cast<size_t>(len * d));
          engine_.final_hidden(std::span<const int32_t>(in).subspan(static_cast<size_t>(start), static_cast<size_t>(len)),
                              embed_state_, hidden.data());
          for (int64_t t = 0; t < len; ++t)
            for (int64_t j = 0; j < d; ++j) mean[static_cast<size_t>(j)] += hidden[static_cast<size_t>(t * d + j)];
        }
        double norm = 0.0;
        for (double& v : mean) {
          v /= static_cast<double>(T);
          norm += v * v;
        }
        norm = std::sqrt(norm);
        std::vector<float> out(static_cast<size_t>(d));
        for (int64_t j = 0; j < d; ++j)
          out[static_cast<size_t>(j)] = static_cast<float>(norm > 0 ? mean[static_cast<size_t>(j)] / norm : 0.0);
        r.vectors.push_back(std::move(out));
        ++inputs;
        tokens += T;
      }
    } catch (const std::exception& e) {
      r.vectors.clear();
      r.error = std::string("engine error: ") + e.what();
    }
    job.result.set_value(std::move(r));
  }
  std::lock_guard lock(mu_);
  stats_.embedding_inputs += inputs;
  stats_.embedding_tokens += tokens;
}

bool Scheduler::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return idle_cv_.wait_for(lock, timeout, [&] { return !has_work_locked(); });
}

void Scheduler::stop() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    stopping_ = true;
    cancel_before_ = next_id_;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // Without an engine thread (or after it), finish whatever is left so no client waits forever.
  while (step()) {
  }
}

void Scheduler::loop() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty() || !embed_queue_.empty() || !active_.empty(); });
      if (stopping_ && queue_.empty() && embed_queue_.empty() && active_.empty()) break;
    }
    step();
  }
}

bool Scheduler::is_cancelled(const RequestState& rs) const {
  return rs.cancelled.load() || rs.id < cancel_before_.load();
}

void Scheduler::drop_cancelled() {
  for (auto& a : active_) {
    if (!is_cancelled(*a->rs)) continue;
    for (Sequence& s : a->seqs)
      if (!s.done) finish(s, "cancelled", nullptr);
  }
}

void Scheduler::admit() {
  std::vector<std::shared_ptr<RequestState>> admitted, dropped;
  {
    std::lock_guard lock(mu_);
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (is_cancelled(**it)) {
        dropped.push_back(std::move(*it));
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
    int64_t avail = engine_.free_slot_count();
    while (!queue_.empty() && avail >= queue_.front()->req.n) {
      const int64_t n = queue_.front()->req.n;
      avail -= n;
      stats_.slots_used += n;
      stats_.prompt_tokens += static_cast<int64_t>(queue_.front()->req.prompt.size());
      admitted.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    running_requests_ += static_cast<int64_t>(admitted.size());
    stats_.requests_cancelled += static_cast<int64_t>(dropped.size());
  }
  for (auto& rs : dropped)
    for (int64_t i = 0; i < rs->req.n; ++i) rs->push(ChoiceEvent{i, "", {}, "cancelled"}, true);

  for (auto& rs : admitted) {
    auto a = std::make_unique<Active>();
    a->rs = rs;
    const GenerationRequest& req = rs->req;
    a->seqs.resize(static_cast<size_t>(req.n));
    for (int64_t i = 0; i < req.n; ++i) {
      Sequence& s = a->seqs[static_cast<size_t>(i)];
      s.owner = a.get();
      s.index = i;
      SamplingParams p = req.sampling;
      p.seed = req.sampling.seed + static_cast<uint64_t>(i);
      s.slot = engine_.allocate_slot(p);
      if (tokenizer_) s.decoder = std::make_unique<StreamDecoder>(*tokenizer_, req.skip_special);
    }
    StateCache::Hit hit = cache_lookup(req.prompt, a->seqs[0].slot, &a->ready_logits);
    a->prefill_pos = a->prefill_base = hit.length;
    a->ready = hit.has_logits;
    {
      std::lock_guard lock(rs->mu);
      rs->usage.cached_tokens = hit.length;
    }
    {
      std::lock_guard lock(mu_);
      stats_.cached_tokens += hit.length;
      if (cache_.enabled()) ++(hit.length > 0 ? stats_.prefix_cache_hits : stats_.prefix_cache_misses);
    }
    active_.push_back(std::move(a));
  }
}

void Scheduler::emit(Sequence& seq, std::string text, int32_t token, const std::string& reason) {
  ChoiceEvent ev;
  ev.index = seq.index;
  ev.text = std::move(text);
  if (token >= 0) ev.tokens.push_back(token);
  ev.finish_reason = reason;
  seq.owner->rs->push(std::move(ev), !reason.empty());
}

void Scheduler::finish(Sequence& seq, const std::string& reason, const float* logits) {
  seq.done = true;
  Active& a = *seq.owner;
  const GenerationRequest& req = a.rs->req;
  if (reason == "cancelled" || reason == "error") {
    emit(seq, "", -1, reason);
    return;
  }
  // The slot's state covers the prompt and every generated token but the last (sampled, never fed):
  // exactly what the next turn of this conversation starts with.
  if (config_.cache_finished_turns && cache_.enabled() && req.n == 1 && seq.generated.size() > 1 && a.prompt_done) {
    std::vector<int32_t> key(req.prompt);
    key.insert(key.end(), seq.generated.begin(), seq.generated.end() - 1);
    cache_put(key, seq.slot,
              logits ? std::span<const float>(logits, static_cast<size_t>(vocab_)) : std::span<const float>());
  }
}

// Emits `text` but what might be the start of a stop string; returns true when a stop string matched
// (the text before it is emitted, the rest dropped).
static bool scan_stop_strings(std::string& held, const std::vector<std::string>& stops, std::string& out, bool final) {
  size_t first = std::string::npos;
  for (const std::string& s : stops) {
    if (s.empty()) continue;
    size_t p = held.find(s);
    if (p < first) first = p;
  }
  if (first != std::string::npos) {
    out += held.substr(0, first);
    held.clear();
    return true;
  }
  size_t keep = 0;
  if (!final) {
    for (const std::string& s : stops) {
      for (size_t k = std::min(s.size() - 1, held.size()); k > keep; --k)
        if (held.compare(held.size() - k, k, s, 0, k) == 0) {
          keep = k;
          break;
        }
    }
  }
  out += held.substr(0, held.size() - keep);
  held.erase(0, held.size() - keep);
  return false;
}

void Scheduler::accept_token(Sequence& seq, int32_t tok, const float* logits, std::vector<double>& ttfts,
                             std::vector<double>& itls) {
  Active& a = *seq.owner;
  const GenerationRequest& req = a.rs->req;
  const Clock::time_point now = Clock::now();
  if (!a.first_token) {
    a.first_token = true;
    ttfts.push_back(seconds_between(a.rs->submitted, now));
  }
  if (!seq.generated.empty()) itls.push_back(seconds_between(seq.last_token, now));
  seq.last_token = now;
  seq.generated.push_back(tok);
  ++step_generated_;

  std::string reason;
  const bool stop_id = std::find(req.stop_ids.begin(), req.stop_ids.end(), tok) != req.stop_ids.end();
  if (stop_id)
    reason = "stop";
  else if (static_cast<int64_t>(seq.generated.size()) >= req.max_tokens)
    reason = "length";
  std::string out;
  // Ids past the tokenizer's vocabulary (a model's padded lm_head rows) have no text, and a stop id's text is not
  // returned (its id is), as vLLM leaves out stop_token_ids' text and as stop strings are left out.
  if (seq.decoder) {
    if (tok < tokenizer_vocab_ && !stop_id) seq.held += seq.decoder->push(tok);
    if (!reason.empty()) seq.held += seq.decoder->flush();
    if (req.stop_strings.empty()) {
      out.swap(seq.held);
    } else if (scan_stop_strings(seq.held, req.stop_strings, out, !reason.empty())) {
      reason = "stop";
    }
  }
  emit(seq, std::move(out), tok, reason);
  if (!reason.empty())
    finish(seq, reason, logits);
  else
    seq.pending = tok;
}

void Scheduler::on_prompt_done(Active& a, const float* logits, bool store) {
  a.prompt_done = true;
  const GenerationRequest& req = a.rs->req;
  if (store && cache_.enabled()) cache_put(req.prompt, a.seqs[0].slot, std::span<const float>(logits, static_cast<size_t>(vocab_)));
  for (size_t i = 1; i < a.seqs.size(); ++i) engine_.copy_state(a.seqs[0].slot, a.seqs[i].slot);
  for (Sequence& s : a.seqs) {
    s.decoding = true;
    if (!s.done) to_sample_.push_back({&s, logits, -1});
  }
}

void Scheduler::release_finished() {
  int64_t freed = 0, finished = 0, cancelled = 0;
  for (auto it = active_.begin(); it != active_.end();) {
    Active& a = **it;
    bool all_done = true;
    for (Sequence& s : a.seqs) {
      if (s.done && s.slot >= 0) {
        engine_.free_slot(s.slot);
        s.slot = -1;
        ++freed;
      }
      all_done = all_done && s.done;
    }
    if (all_done) {
      ++(is_cancelled(*a.rs) ? cancelled : finished);
      it = active_.erase(it);
    } else {
      ++it;
    }
  }
  if (freed == 0 && finished == 0 && cancelled == 0) return;
  bool idle;
  {
    std::lock_guard lock(mu_);
    stats_.slots_used -= freed;
    stats_.requests_finished += finished;
    stats_.requests_cancelled += cancelled;
    running_requests_ -= finished + cancelled;
    idle = !has_work_locked();
  }
  if (idle) idle_cv_.notify_all();
}

void Scheduler::fail_all(const std::string& message) {
  for (auto& a : active_) {
    {
      std::lock_guard lock(a->rs->mu);
      a->rs->error = message;
    }
    for (Sequence& s : a->seqs)
      if (!s.done) finish(s, "error", nullptr);
  }
}

bool Scheduler::step() {
  run_embeddings();
  drop_cancelled();
  release_finished();
  admit();
  if (active_.empty()) {
    std::lock_guard lock(mu_);
    if (!has_work_locked()) idle_cv_.notify_all();
    return false;
  }
  const Clock::time_point t0 = Clock::now();
  const int64_t Q = engine_.config().chunk_size;
  std::vector<double> ttfts, itls;
  step_generated_ = 0;

  // Plan: decode rows first, then prefill chunks.
  batch_.decode.clear();
  batch_.chunks.clear();
  std::vector<Sequence*> decode_owners;
  std::vector<Active*> prompt_owners;  // one per chunk that completes its prompt
  struct Chunk {
    Active* a;
    int64_t len;
  };
  std::vector<Chunk> chunks;
  int64_t rows = 0;

  std::vector<Sequence*> decoding;
  bool prefill_pending = false;
  for (auto& a : active_) {
    if (!a->prompt_done && !a->ready) prefill_pending = true;
    for (Sequence& s : a->seqs)
      if (s.decoding && !s.done && s.pending >= 0) decoding.push_back(&s);
  }
  int64_t decode_cap = budget_;
  if (prefill_pending) decode_cap = std::max<int64_t>(budget_ - Q, budget_ / 2);
  const int64_t n_decode = std::min<int64_t>(static_cast<int64_t>(decoding.size()), decode_cap);
  if (!decoding.empty()) {
    const size_t start = decode_cursor_ % decoding.size();
    for (int64_t k = 0; k < n_decode; ++k) {
      Sequence* s = decoding[(start + static_cast<size_t>(k)) % decoding.size()];
      batch_.decode.push_back({s->slot, s->pending});
      decode_owners.push_back(s);
      ++rows;
    }
    decode_cursor_ = (start + static_cast<size_t>(n_decode)) % decoding.size();
  }
  bool first_chunk = true;
  for (auto& ap : active_) {
    Active& a = *ap;
    if (a.prompt_done || a.ready) continue;
    const int64_t space = budget_ - rows;
    if (space <= 0) break;
    const int64_t L = static_cast<int64_t>(a.rs->req.prompt.size());
    const int64_t remaining = L - a.prefill_pos;
    int64_t len = std::min(remaining, space);
    const auto& cps = a.rs->req.cache_checkpoints;
    auto cp = std::upper_bound(cps.begin(), cps.end(), a.prefill_pos);
    if (cache_.enabled() && cp != cps.end() && *cp <= a.prefill_pos + len) {
      len = *cp - a.prefill_pos;  // stop at the checkpoint so its state can be stored
    } else if (len < remaining) {
      // End the chunk on an SSD chunk boundary counted from where this prefill started.
      const int64_t off = a.prefill_pos - a.prefill_base;
      const int64_t aligned = (off + len) / Q * Q - off;
      if (aligned > 0)
        len = aligned;
      else if (!first_chunk)
        break;
    }
    first_chunk = false;
    const bool last = a.prefill_pos + len == L;
    batch_.chunks.push_back({a.seqs[0].slot,
                             std::span<const int32_t>(a.rs->req.prompt.data() + a.prefill_pos, static_cast<size_t>(len)),
                             last});
    if (last) prompt_owners.push_back(&a);
    chunks.push_back({&a, len});
    rows += len;
  }

  int64_t prefilled = 0;
  try {
    engine_.run(batch_, batch_out_);
    for (const Chunk& c : chunks) {
      c.a->prefill_pos += c.len;
      prefilled += c.len;
      const auto& req = c.a->rs->req;
      if (cache_.enabled() && c.a->prefill_pos < static_cast<int64_t>(req.prompt.size()) &&
          std::binary_search(req.cache_checkpoints.begin(), req.cache_checkpoints.end(), c.a->prefill_pos))
        cache_put(std::span<const int32_t>(req.prompt.data(), static_cast<size_t>(c.a->prefill_pos)), c.a->seqs[0].slot);
    }
    to_sample_.clear();
    for (size_t i = 0; i < decode_owners.size(); ++i)
      to_sample_.push_back({decode_owners[i], batch_out_.decode_logits.empty() ? nullptr : batch_out_.decode_logits[i],
                            batch_out_.decode_ids[i]});
    const size_t first_new = to_sample_.size();
    for (size_t i = 0; i < prompt_owners.size(); ++i)
      on_prompt_done(*prompt_owners[i], batch_out_.prompt_logits[i], /*store=*/true);
    for (auto& a : active_)
      if (a->ready && !a->prompt_done) on_prompt_done(*a, a->ready_logits.data(), /*store=*/false);
    // The first token of each newly prefilled choice, from its prompt's logits, with the choice's sampler.
    if (to_sample_.size() > first_new) {
      std::vector<int32_t> slots, ids(to_sample_.size() - first_new);
      std::vector<const float*> rows_logits;
      for (size_t i = first_new; i < to_sample_.size(); ++i) {
        slots.push_back(to_sample_[i].seq->slot);
        rows_logits.push_back(to_sample_[i].logits);
      }
      engine_.sample(slots, rows_logits, ids.data());
      for (size_t i = first_new; i < to_sample_.size(); ++i) to_sample_[i].token = ids[i - first_new];
    }
    for (PendingSample& p : to_sample_) accept_token(*p.seq, p.token, p.logits, ttfts, itls);
  } catch (const std::exception& e) {
    fail_all(std::string("engine error: ") + e.what());
  }
  release_finished();

  const double dt = seconds_between(t0, Clock::now());
  {
    std::lock_guard lock(mu_);
    ++stats_.steps;
    stats_.step_rows += rows;
    stats_.prefill_tokens += prefilled;
    stats_.generated_tokens += step_generated_;
    stats_.step_seconds.observe(dt);
    for (double v : ttfts) stats_.ttft.observe(v);
    for (double v : itls) stats_.itl.observe(v);
    stats_.cache = cache_.stats();
  }
  return true;
}

StateCache::Hit Scheduler::cache_lookup(const std::vector<int32_t>& prompt, int32_t slot, std::vector<float>* logits) {
  if (!cache_.enabled()) return cache_.lookup(prompt, cache_scratch_, logits);  // counts the miss
  if (SequenceState* host = engine_.host_state(slot)) {
    StateCache::Hit hit = cache_.lookup(prompt, *host, logits);
    if (hit.length == 0) host->reset();
    return hit;
  }
  StateCache::Hit hit = cache_.lookup(prompt, cache_scratch_, logits);
  if (hit.length > 0) engine_.load_state(slot, cache_scratch_);
  return hit;
}

void Scheduler::cache_put(std::span<const int32_t> key, int32_t slot, std::span<const float> logits) {
  if (const SequenceState* host = engine_.host_state(slot)) {
    cache_.put(key, *host, logits);
    return;
  }
  engine_.store_state(slot, cache_scratch_);
  cache_.put(key, cache_scratch_, logits);
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard lock(mu_);
  SchedulerStats s = stats_;
  s.queue_depth = static_cast<int64_t>(queue_.size());
  s.running_requests = running_requests_;
  return s;
}

}  // namespace pcm
