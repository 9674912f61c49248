#include "train/dataset.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "io/jsonl.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace pcm {
namespace {

const Tokenizer& need_tokenizer(const TextCodec& c, const std::string& where) {
  if (!c.tokenizer)
    fail("{}: text rows need a tokenizer (set `tokenizer` or `init_from` in the config to a directory with "
         "tokenizer.json)", where);
  return *c.tokenizer;
}

std::string need_string(const json& row, const char* key, const std::string& where) {
  auto it = row.find(key);
  if (it == row.end() || !it->is_string()) fail("{}: field \"{}\" must be a string", where, key);
  return it->get<std::string>();
}

void append(Document& d, const std::vector<int32_t>& ids, bool loss) {
  d.ids.insert(d.ids.end(), ids.begin(), ids.end());
  d.loss.insert(d.loss.end(), ids.size(), loss ? 1 : 0);
}

Document from_messages(const json& messages, const TextCodec& c, const std::string& where) {
  const Tokenizer& tok = need_tokenizer(c, where);
  if (!c.chat) fail("{}: \"messages\" rows need a chat template in the tokenizer directory", where);
  if (!messages.is_array() || messages.empty()) fail("{}: \"messages\" must be a non-empty array", where);
  bool any_assistant = false;
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      fail("{}: messages[{}] needs a string \"role\"", where, i);
    any_assistant |= m["role"] == "assistant";
  }
  if (!any_assistant) fail("{}: \"messages\" has no assistant turn to train on", where);
  // The full render is the document; a turn's tokens are the difference between the renders of the
  // prefixes before and after it. Loss goes on assistant turns only.
  std::vector<int32_t> full = tok.encode(c.chat->render(messages, false), false);
  Document d;
  d.ids = full;
  d.loss.assign(full.size(), 0);
  size_t prev = 0;
  for (size_t i = 0; i < messages.size(); ++i) {
    json prefix(messages.begin(), messages.begin() + static_cast<std::ptrdiff_t>(i + 1));
    std::vector<int32_t> ids = tok.encode(c.chat->render(prefix, false), false);
    size_t common = 0;
    while (common < ids.size() && common < full.size() && ids[common] == full[common]) ++common;
    size_t end = std::min(common, full.size());
    // Tokens merging across the turn boundary make `common` end early; the turn still owns [prev, end).
    if (messages[i]["role"] == "assistant")
      for (size_t t = std::min(prev, end); t < end; ++t) d.loss[t] = 1;
    prev = std::max(prev, end);
  }
  return d;
}

}  // namespace

Document tokenize_row(const json& row, const TextCodec& c, const std::string& where) {
  if (!row.is_object()) fail("{}: expected a JSON object", where);
  Document d;
  if (row.contains("messages")) return from_messages(row["messages"], c, where);
  if (row.contains("prompt") || row.contains("completion")) {
    const Tokenizer& tok = need_tokenizer(c, where);
    append(d, tok.encode(need_string(row, "prompt", where), true), false);
    append(d, tok.encode(need_string(row, "completion", where), false), true);
    if (tok.eos_id() >= 0 && (d.ids.empty() || d.ids.back() != tok.eos_id())) append(d, {tok.eos_id()}, true);
  } else if (row.contains("text")) {
    const Tokenizer& tok = need_tokenizer(c, where);
    append(d, tok.encode(need_string(row, "text", where), true), true);
    if (tok.eos_id() >= 0 && (d.ids.empty() || d.ids.back() != tok.eos_id())) append(d, {tok.eos_id()}, true);
  } else if (row.contains("input_ids")) {
    const json& ids = row["input_ids"];
    if (!ids.is_array()) fail("{}: \"input_ids\" must be an array of integers", where);
    for (const json& v : ids) {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX)
        fail("{}: \"input_ids\" holds {}, not a token id", where, v.dump());
      d.ids.push_back(v.get<int32_t>());
    }
    d.loss.assign(d.ids.size(), 1);
    if (row.contains("loss_mask")) {
      const json& m = row["loss_mask"];
      if (!m.is_array() || m.size() != ids.size())
        fail("{}: \"loss_mask\" must be an array as long as input_ids", where);
      for (size_t i = 0; i < m.size(); ++i) d.loss[i] = m[i].is_boolean() ? m[i].get<bool>() : m[i].get<int>() != 0;
    }
  } else {
    fail("{}: a row needs \"messages\", \"prompt\"+\"completion\", \"text\" or \"input_ids\"", where);
  }
  return d;
}

std::vector<Document> load_documents(const std::string& path, const TextCodec& codec) {
  std::vector<Document> docs;
  for_each_jsonl(path, [&](const json& row, int64_t line) {
    docs.push_back(tokenize_row(row, codec, path + ":" + std::to_string(line)));
  });
  if (docs.empty()) fail("{}: no rows", path);
  return docs;
}

PackedBatch pack_documents(const std::vector<const Document*>& docs, int64_t seq_len, OverlongRule rule,
                           PackStats* stats) {
  PackStats s;
  PackedBatch b;
  b.seq_len = seq_len;
  int64_t used = seq_len;  // positions filled in the current row; seq_len = start a new row
  auto new_row = [&] {
    b.rows++;
    b.tokens.resize(b.rows * seq_len, 0);
    b.targets.resize(b.rows * seq_len, -1);
    b.doc_start.resize(b.rows * seq_len, 0);
    used = 0;
  };
  for (const Document* d : docs) {
    s.documents++;
    int64_t n = static_cast<int64_t>(d->ids.size());
    if (n == 0) continue;
    if (n > seq_len) {
      if (rule == OverlongRule::Drop) {
        s.dropped++;
        continue;
      }
      s.truncated++;
      n = seq_len;
    }
    if (used + n > seq_len) {
      // Padding after the last document must not carry its state: mark it as a new "document".
      if (b.rows > 0 && used < seq_len) b.doc_start[(b.rows - 1) * seq_len + used] = 1;
      new_row();
    }
    int64_t base = (b.rows - 1) * seq_len + used;
    for (int64_t i = 0; i < n; ++i) {
      b.tokens[base + i] = d->ids[i];
      bool has_target = i + 1 < n && d->loss[i + 1];
      b.targets[base + i] = has_target ? d->ids[i + 1] : -1;
      s.loss_tokens += has_target;
    }
    b.doc_start[base] = 1;
    used += n;
    s.tokens += n;
  }
  if (b.rows > 0 && used < seq_len) b.doc_start[(b.rows - 1) * seq_len + used] = 1;
  s.rows = b.rows;
  if (stats) *stats = s;
  return b;
}

PhaseData::PhaseData(const PhaseConfig& phase, const TextCodec& codec, uint64_t seed) : phase_(phase), seed_(seed) {
  // Mixture: each dataset contributes round(weight * n) documents per epoch (whole copies, then a
  // seeded subset for the fraction), the same set every epoch.
  std::mt19937_64 rng(seed ^ 0x6d6978747572ULL);
  for (const DatasetSpec& ds : phase.datasets) {
    std::vector<Document> part = load_documents(ds.path, codec);
    int64_t n = static_cast<int64_t>(part.size());
    int64_t want = std::max<int64_t>(1, std::llround(ds.weight * static_cast<double>(n)));
    int64_t first = static_cast<int64_t>(docs_.size());
    for (auto& d : part) docs_.push_back(std::move(d));
    for (int64_t k = 0; k + n <= want; k += n)
      for (int64_t i = 0; i < n; ++i) mixture_.push_back(first + i);
    int64_t rest = want % n;
    if (rest) {
      std::vector<int64_t> idx(n);
      for (int64_t i = 0; i < n; ++i) idx[i] = first + i;
      std::shuffle(idx.begin(), idx.end(), rng);
      mixture_.insert(mixture_.end(), idx.begin(), idx.begin() + rest);
    }
  }
  build_epoch(0);
  epoch_rows_ = cached_.rows;
  if (epoch_rows_ == 0) fail("phase '{}': every document was dropped (all longer than seq_len {})", phase.name, phase.seq_len);
}

void PhaseData::build_epoch(int64_t epoch) {
  if (cached_epoch_ == epoch) return;
  std::vector<int64_t> order = mixture_;
  std::mt19937_64 rng(seed_ * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(epoch) + 1);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<const Document*> docs;
  for (int64_t i : order) docs.push_back(&docs_[i]);
  cached_ = pack_documents(docs, phase_.seq_len, phase_.overlong, &stats_);
  cached_epoch_ = epoch;
}

PackedBatch PhaseData::rows(int64_t first, int64_t count) {
  PackedBatch out;
  out.seq_len = phase_.seq_len;
  out.rows = count;
  const int64_t L = phase_.seq_len;
  for (int64_t r = first; r < first + count; ++r) {
    build_epoch(r / epoch_rows_);
    // Epochs may pack to different row counts; wrap rows beyond this epoch's packing.
    int64_t local = (r % epoch_rows_) % cached_.rows;
    out.tokens.insert(out.tokens.end(), cached_.tokens.begin() + local * L, cached_.tokens.begin() + (local + 1) * L);
    out.targets.insert(out.targets.end(), cached_.targets.begin() + local * L, cached_.targets.begin() + (local + 1) * L);
    out.doc_start.insert(out.doc_start.end(), cached_.doc_start.begin() + local * L,
                         cached_.doc_start.begin() + (local + 1) * L);
  }
  return out;
}

}  // namespace pcm
