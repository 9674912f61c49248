// What every synth stage shares: the output directory and its file names, token accounting, stats.json,
// the per-stage progress line, and the resumable item runner (append-only JSONL keyed by item id; a
// restarted stage skips ids already written; a kill loses only items in flight).
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "synth/config.h"
#include "synth/llm_client.h"

namespace pcm::synth {

// Thrown when the stop flag (SIGINT) ended a stage early; finished items are on disk.
class Interrupted : public Error {
 public:
  using Error::Error;
};
// Thrown when a stage finished but some items' requests failed for good (endpoint down, 4xx): later
// stages would see partial data, so the run stops; rerunning retries exactly those items.
class IncompleteStage : public Error {
 public:
  using Error::Error;
};

// File names inside the output directory, one per stage.
namespace files {
inline constexpr const char* kConcepts = "concepts.jsonl";
inline constexpr const char* kEmbeddings = "embeddings.jsonl";
inline constexpr const char* kSamples = "samples.jsonl";
inline constexpr const char* kProblems = "problems.jsonl";
inline constexpr const char* kJudgements = "judgements.jsonl";
inline constexpr const char* kFiltered = "filtered.jsonl";
inline constexpr const char* kSolutions = "solutions.jsonl";
inline constexpr const char* kTrain = "train.jsonl";
inline constexpr const char* kDataCard = "data_card.json";
inline constexpr const char* kStats = "stats.json";
}  // namespace files

// A stable id for a text: prefix + 16 hex digits of a 64-bit FNV-1a hash.
std::string stable_id(const std::string& prefix, const std::string& text);

struct RunContext {
  SynthConfig config;
  std::string out_dir;
  UsageLedger ledger;  // loaded from stats.json at start so totals span restarts
  const std::atomic<bool>* stop = nullptr;
  bool progress = true;            // print progress lines to stderr
  double progress_interval_s = 2;  // seconds between progress lines

  // Takes an exclusive lock on DIR/.lock: two runs appending to the same files would duplicate work.
  RunContext(SynthConfig cfg, std::string dir);
  ~RunContext();
  RunContext(const RunContext&) = delete;
  RunContext& operator=(const RunContext&) = delete;
  std::string path(const char* name) const { return out_dir + "/" + name; }
  bool stop_requested() const { return stop && stop->load(); }
  // Rewrites stats.json (atomically): tokens per role plus per-stage counts taken from the stage files
  // (re-read only when `recount`; periodic saves during a stage keep the last counts).
  void save_stats(bool recount = true);
  nlohmann::json stage_cache = nlohmann::json::object();

 private:
  int lock_fd_ = -1;
};

// Rows of a stage file (empty when it does not exist yet), sorted by "id" so results never depend on
// the order in which concurrent items finished.
// `keep` (when not empty) lists the fields to hold in memory besides id/status/reason, so a stage that
// needs a few fields of a large file does not hold every completion.
std::vector<nlohmann::json> read_rows_sorted(const std::string& path, const std::vector<std::string>& keep = {});
std::set<std::string> read_done_ids(const std::string& path);

// Rows with "status": "ok" (or no status), sorted by id, each checked to hold `fields` with the right
// types; a hand-edited row that breaks this is an error naming the file, the row id and the field.
enum class Field { String, StringList, NumberList, Array };
std::vector<nlohmann::json> read_ok_rows(const std::string& path,
                                         std::initializer_list<std::pair<const char*, Field>> fields,
                                         const std::vector<std::string>& keep = {});
void check_fields(const nlohmann::json& row, const std::string& path,
                  std::initializer_list<std::pair<const char*, Field>> fields);

// Per-stage counts from its file: {"rows", "ok", "dropped", "reasons": {...}}.
nlohmann::json stage_counts(const std::string& path);

class Progress {
 public:
  Progress(const RunContext& ctx, std::string stage, int64_t total, int64_t already_done, RoleUsage* usage);
  void item_done(bool kept);
  void item_failed();  // its requests failed for good; retried on the next run
  void finish();

 private:
  void print(bool final_line);
  const RunContext& ctx_;
  std::string stage_;
  int64_t total_, base_done_;
  RoleUsage* usage_;
  std::mutex mutex_;
  int64_t done_ = 0, kept_ = 0, failed_ = 0;
  int64_t base_requests_ = 0, base_tokens_ = 0;
  std::chrono::steady_clock::time_point start_, last_print_;
};

struct WorkItem {
  std::string id;
  nlohmann::json input;
};

// Processes `items` whose ids are not yet in `out_path` with the role's concurrency. `process` returns
// the rows to append (each with "id" and "status": "ok" | "dropped" plus "reason"); an LlmError from it
// leaves the item unwritten (retried on the next run). An item counts as finished when a row with its id
// is in the file. Throws Interrupted / IncompleteStage as described above.
struct ItemStageResult {
  int64_t processed = 0, kept = 0, failed = 0, skipped = 0;
};
ItemStageResult run_item_stage(RunContext& ctx, const std::string& stage, const std::string& out_path,
                               const std::vector<WorkItem>& items, const RoleConfig& role,
                               const std::function<std::vector<nlohmann::json>(const WorkItem&, LlmClient&)>& process);

}  // namespace pcm::synth
