#include "synth/run_context.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>

#include "io/jsonl.h"
#include "synth/executor.h"
#include "util/file.h"
#include "util/json.h"

namespace pcm::synth {

using nlohmann::json;

std::string stable_id(const std::string& prefix, const std::string& text) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return fmt::format("{}{:016x}", prefix, h);
}

RunContext::RunContext(SynthConfig cfg, std::string dir) : config(std::move(cfg)), out_dir(std::move(dir)) {
  std::filesystem::create_directories(out_dir);
  std::string lock = path(".lock");
  lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  PCM_CHECK(lock_fd_ >= 0, "{}: cannot create lock file: {}", lock, std::strerror(errno));
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_fd_);
    lock_fd_ = -1;
    fail("{}: another pcm synth run is using this directory", out_dir);
  }
  std::string stats = path(files::kStats);
  if (file_exists(stats)) {
    json j = read_json_file(stats);
    if (j.contains("tokens")) ledger.add_from_json(j["tokens"]);
  }
}

RunContext::~RunContext() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the lock
}

std::vector<json> read_rows_sorted(const std::string& path, const std::vector<std::string>& keep) {
  std::vector<json> rows;
  if (!file_exists(path)) return rows;
  for_each_jsonl(path, [&](const json& row, int64_t line) {
    PCM_CHECK(row.is_object() && row.contains("id") && row["id"].is_string(), "{}:{}: row has no string \"id\"",
              path, line);
    if (keep.empty()) {
      rows.push_back(row);
      return;
    }
    json slim = json::object();
    for (const char* k : {"id", "status", "reason"})
      if (row.contains(k)) slim[k] = row[k];
    for (const auto& k : keep)
      if (row.contains(k)) slim[k] = row[k];
    rows.push_back(std::move(slim));
  });
  // A row may be present twice if a user appended by hand; the first one wins.
  std::stable_sort(rows.begin(), rows.end(), [](const json& a, const json& b) {
    return a["id"].get_ref<const std::string&>() < b["id"].get_ref<const std::string&>();
  });
  rows.erase(std::unique(rows.begin(), rows.end(), [](const json& a, const json& b) { return a["id"] == b["id"]; }),
             rows.end());
  return rows;
}

std::set<std::string> read_done_ids(const std::string& path) {
  std::set<std::string> ids;
  if (!file_exists(path)) return ids;
  for_each_jsonl(path, [&](const json& row, int64_t line) {
    PCM_CHECK(row.is_object() && row.contains("id") && row["id"].is_string(), "{}:{}: row has no string \"id\"",
              path, line);
    ids.insert(row["id"].get<std::string>());
  });
  return ids;
}

void check_fields(const json& row, const std::string& path, std::initializer_list<std::pair<const char*, Field>> fields) {
  for (const auto& [key, kind] : fields) {
    auto where = [&, key = key] { return fmt::format("{}: row {}: field \"{}\"", path, row["id"].dump(), key); };
    PCM_CHECK(row.contains(key), "{} is missing", where());
    const json& v = row[key];
    switch (kind) {
      case Field::String: PCM_CHECK(v.is_string(), "{} must be a string", where()); break;
      case Field::Array: PCM_CHECK(v.is_array(), "{} must be an array", where()); break;
      case Field::StringList:
        PCM_CHECK(v.is_array() && std::all_of(v.begin(), v.end(), [](const json& x) { return x.is_string(); }),
                  "{} must be a list of strings", where());
        break;
      case Field::NumberList:
        PCM_CHECK(v.is_array() && !v.empty() && std::all_of(v.begin(), v.end(), [](const json& x) { return x.is_number(); }),
                  "{} must be a non-empty list of numbers", where());
        break;
    }
  }
}

std::vector<json> read_ok_rows(const std::string& path, std::initializer_list<std::pair<const char*, Field>> fields,
                               const std::vector<std::string>& keep) {
  std::vector<json> out;
  for (json& row : read_rows_sorted(path, keep)) {
    if (json_string_or(row, "status", "ok") != "ok") continue;
    check_fields(row, path, fields);
    out.push_back(std::move(row));
  }
  return out;
}

json stage_counts(const std::string& path) {
  json out = {{"rows", 0}, {"ok", 0}, {"dropped", 0}, {"reasons", json::object()}};
  for (const json& row : read_rows_sorted(path, {"status"})) {
    out["rows"] = out["rows"].get<int64_t>() + 1;
    std::string status = json_string_or(row, "status", "ok");
    if (status == "ok") {
      out["ok"] = out["ok"].get<int64_t>() + 1;
    } else {
      out["dropped"] = out["dropped"].get<int64_t>() + 1;
      std::string reason = json_string_or(row, "reason", "unspecified");
      out["reasons"][reason] = json_int_or(out["reasons"], reason, 0) + 1;
    }
  }
  return out;
}

void RunContext::save_stats(bool recount) {
  json& stages = stage_cache;
  if (recount) for (auto [name, file] : {std::pair{"concepts", files::kConcepts}, std::pair{"embed", files::kEmbeddings},
                            std::pair{"sample", files::kSamples}, std::pair{"generate", files::kProblems},
                            std::pair{"judge", files::kJudgements}, std::pair{"filter", files::kFiltered},
                            std::pair{"solve", files::kSolutions}}) {
    if (file_exists(path(file))) stages[name] = stage_counts(path(file));
  }
  if (recount && file_exists(path(files::kTrain))) stages["export"] = {{"rows", read_jsonl(path(files::kTrain)).size()}};
  json tokens = ledger.to_json();
  json out = {{"tokens", tokens}, {"total_tokens", ledger.total_tokens()}, {"stages", stages},
              {"updated_unix", static_cast<int64_t>(std::time(nullptr))}};
  write_file_atomic(path(files::kStats), out.dump(2) + "\n");
}

// ---- progress ----------------------------------------------------------------------------------------

Progress::Progress(const RunContext& ctx, std::string stage, int64_t total, int64_t already_done, RoleUsage* usage)
    : ctx_(ctx), stage_(std::move(stage)), total_(total), base_done_(already_done), usage_(usage) {
  start_ = last_print_ = std::chrono::steady_clock::now();
  if (usage_) {
    base_requests_ = usage_->requests.load();
    base_tokens_ = usage_->prompt_tokens.load() + usage_->completion_tokens.load();
  }
}

void Progress::item_done(bool kept) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++done_;
  if (kept) ++kept_;
  auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - last_print_).count() >= ctx_.progress_interval_s) {
    last_print_ = now;
    print(false);
  }
}

void Progress::item_failed() {
  std::lock_guard<std::mutex> lock(mutex_);
  ++failed_;
}

void Progress::finish() {
  std::lock_guard<std::mutex> lock(mutex_);
  print(true);
}

namespace {
std::string human_duration(double s) {
  if (!(s >= 0) || s > 1e8) return "?";
  int64_t t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600) return fmt::format("{}h{:02}m", t / 3600, (t % 3600) / 60);
  if (t >= 60) return fmt::format("{}m{:02}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}
}  // namespace

void Progress::print(bool final_line) {
  if (!ctx_.progress) return;
  double elapsed = std::max(1e-9, std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  int64_t done_all = base_done_ + done_;
  double rate = static_cast<double>(done_) / elapsed;
  double eta = rate > 0 ? static_cast<double>(total_ - done_all) / rate : -1.0;
  std::string line = fmt::format("[{}] {}/{}", stage_, done_all, total_);
  if (done_ > 0) line += fmt::format(" kept {:.1f}%", 100.0 * static_cast<double>(kept_) / static_cast<double>(done_));
  if (failed_ > 0) line += fmt::format(" failed {}", failed_);
  if (usage_) {
    double rps = static_cast<double>(usage_->requests.load() - base_requests_) / elapsed;
    double tps = static_cast<double>(usage_->prompt_tokens.load() + usage_->completion_tokens.load() - base_tokens_) /
                 elapsed;
    line += fmt::format(" | {:.2f} req/s {:.0f} tok/s", rps, tps);
  }
  line += final_line ? fmt::format(" | done in {}", human_duration(elapsed)) : fmt::format(" | ETA {}", human_duration(eta));
  std::fprintf(stderr, "%s\n", line.c_str());
}

// ---- the item runner -----------------------------------------------------------------------------------

ItemStageResult run_item_stage(RunContext& ctx, const std::string& stage, const std::string& out_path,
                               const std::vector<WorkItem>& items, const RoleConfig& role,
                               const std::function<std::vector<json>(const WorkItem&, LlmClient&)>& process) {
  std::set<std::string> done = read_done_ids(out_path);
  std::vector<const WorkItem*> todo;
  for (const auto& item : items)
    if (!done.count(item.id)) todo.push_back(&item);
  ItemStageResult result;
  result.skipped = static_cast<int64_t>(items.size() - todo.size());

  RoleUsage& usage = ctx.ledger.role(role.name);
  LlmClient client(role.endpoint, &usage);
  JsonlAppender out(out_path);
  Progress progress(ctx, stage, static_cast<int64_t>(items.size()), result.skipped, &usage);

  std::mutex mutex;
  int consecutive_failures = 0;
  std::string last_failure;
  auto last_stats = std::chrono::steady_clock::now();
  ExecutorOptions options;
  options.concurrency = role.concurrency;
  options.stop = ctx.stop;
  run_bounded(todo.size(), options, [&](size_t i) {
    const WorkItem& item = *todo[i];
    std::vector<json> rows;
    try {
      rows = process(item, client);
    } catch (const LlmError& e) {
      progress.item_failed();
      std::lock_guard<std::mutex> lock(mutex);
      ++result.failed;
      last_failure = e.what();
      if (++consecutive_failures >= ctx.config.max_consecutive_failures)
        fail("{}: {} requests in a row failed for good; stopping (last: {})", stage, consecutive_failures,
             last_failure);
      return;
    }
    bool kept = false;
    for (const json& row : rows) {
      out.append(row);
      if (json_string_or(row, "status", "ok") == "ok") kept = true;
    }
    progress.item_done(kept);
    std::lock_guard<std::mutex> lock(mutex);
    consecutive_failures = 0;
    ++result.processed;
    if (kept) ++result.kept;
    auto now = std::chrono::steady_clock::now();
    if (std::chrono::duration<double>(now - last_stats).count() > 5.0) {
      last_stats = now;
      ctx.save_stats(/*recount=*/false);
    }
  });
  progress.finish();
  ctx.save_stats();
  if (ctx.stop_requested()) throw Interrupted(fmt::format("{}: interrupted; finished items are saved, rerun to resume", stage));
  if (result.failed > 0)
    throw IncompleteStage(fmt::format("{}: {} item(s) failed after retries (last: {}); rerun to retry them", stage,
                                      result.failed, last_failure));
  return result;
}

}  // namespace pcm::synth
