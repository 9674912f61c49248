#include "tokenizer/bpe_model.h"

#include <algorithm>

#include "tokenizer/utf8.h"
#include "util/error.h"

namespace pcm {

namespace {

constexpr std::string_view kMetaspace = "\xE2\x96\x81";  // U+2581, SentencePiece's space
constexpr size_t kCacheMaxWordBytes = 256;                // HF caches words shorter than this
constexpr size_t kCacheShards = 16;
constexpr size_t kCacheShardCapacity = 4096;

struct Merge {
  uint32_t rank;
  int32_t pos;
  int32_t id;
};
// std heap functions build a max-heap; "greater" puts the lowest rank, then lowest pos, on top.
struct MergeAfter {
  bool operator()(const Merge& a, const Merge& b) const {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  }
};

}  // namespace

// ---- MergeMap ----

void MergeMap::reserve(size_t n) {
  size_t cap = 16;
  while (cap < n * 2) cap <<= 1;
  slots_.assign(cap, Slot{});
  mask_ = cap - 1;
  size_ = 0;
}

void MergeMap::insert_or_assign(int32_t a, int32_t b, Value v) {
  if ((size_ + 1) * 2 > slots_.size()) {
    std::vector<Slot> old;
    old.swap(slots_);
    reserve(std::max<size_t>(16, old.size()));
    for (const Slot& s : old) {
      if (s.key != kEmpty) insert_or_assign(static_cast<int32_t>(s.key >> 32), static_cast<int32_t>(s.key & 0xffffffffu), s.value);
    }
  }
  uint64_t key = make_key(a, b);
  size_t i = hash(key) & mask_;
  while (slots_[i].key != kEmpty && slots_[i].key != key) i = (i + 1) & mask_;
  if (slots_[i].key == kEmpty) ++size_;
  slots_[i].key = key;
  slots_[i].value = v;
}

// ---- cache ----

struct BpeModel::CacheShard {
  std::mutex mutex;
  std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> map;
};

BpeModel::~BpeModel() = default;

// ---- loading ----

std::unique_ptr<BpeModel> BpeModel::from_json(const json& spec, const std::string& where) {
  PCM_CHECK(spec.is_object(), "{}: expected an object, got {}", where, spec.dump().substr(0, 80));
  if (spec.contains("type") && !spec["type"].is_null()) {
    PCM_CHECK(spec["type"].is_string(), "{}.type: expected a string", where);
    const auto& type = spec["type"].get_ref<const std::string&>();
    PCM_CHECK(type == "BPE", "{}: unsupported model type \"{}\" (only BPE is supported)", where, type);
  }
  PCM_CHECK(spec.contains("vocab") && spec["vocab"].is_object(), "{}: missing \"vocab\" object", where);
  PCM_CHECK(spec.contains("merges") && spec["merges"].is_array(), "{}: missing \"merges\" list", where);
  if (spec.contains("dropout") && !spec["dropout"].is_null()) {
    double p = json_to_double(spec["dropout"], where + ".dropout");
    PCM_CHECK(p == 0.0, "{}.dropout: BPE dropout {} is not supported (only null)", where, p);
  }

  std::unique_ptr<BpeModel> m(new BpeModel());
  const json& vocab = spec["vocab"];
  m->vocab_.reserve(vocab.size());
  int64_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    PCM_CHECK(it.value().is_number_integer(), "{}.vocab[\"{}\"]: expected an integer id, got {}", where, it.key(),
              it.value().dump());
    int64_t id = it.value().get<int64_t>();
    PCM_CHECK(id >= 0 && id < (int64_t{1} << 31), "{}.vocab[\"{}\"]: id {} out of range", where, it.key(), id);
    m->vocab_[it.key()] = static_cast<int32_t>(id);
    max_id = std::max(max_id, id);
  }
  // Ids index dense tables; a file whose ids leave most of the range empty is malformed.
  PCM_CHECK(max_id < static_cast<int64_t>(vocab.size()) + (int64_t{1} << 20),
            "{}.vocab: largest id {} is far beyond the {} entries (ids must be dense)", where, max_id, vocab.size());
  m->id_to_token_.assign(static_cast<size_t>(max_id + 1), std::string());
  m->has_token_.assign(static_cast<size_t>(max_id + 1), 0);
  for (const auto& [tok, id] : m->vocab_) {
    m->id_to_token_[static_cast<size_t>(id)] = tok;
    m->has_token_[static_cast<size_t>(id)] = 1;
  }

  auto opt_string = [&](const char* key) -> std::optional<std::string> {
    auto it = spec.find(key);
    if (it == spec.end() || it->is_null()) return std::nullopt;
    PCM_CHECK(it->is_string(), "{}.{}: expected a string or null", where, key);
    return it->get<std::string>();
  };
  m->unk_token_ = opt_string("unk_token");
  if (auto p = opt_string("continuing_subword_prefix")) {
    m->prefix_ = *p;
    m->has_prefix_ = true;
  }
  if (auto s = opt_string("end_of_word_suffix")) {
    m->suffix_ = *s;
    m->has_suffix_ = true;
  }
  m->fuse_unk_ = json_bool_or(spec, "fuse_unk", false);
  m->byte_fallback_ = json_bool_or(spec, "byte_fallback", false);
  m->ignore_merges_ = json_bool_or(spec, "ignore_merges", false);

  // Merges: "a b" strings (legacy; "#version" lines skipped) or [a, b] pairs. The merged token is
  // a + b without b's continuing_subword_prefix; a later duplicate pair replaces an earlier one.
  const json& merges = spec["merges"];
  m->merges_.reserve(merges.size());
  uint32_t rank = 0;
  bool any_boundary_merge = false;
  std::string merged;
  for (size_t i = 0; i < merges.size(); ++i) {
    const json& e = merges[i];
    std::string a, b;
    if (e.is_string()) {
      const auto& line = e.get_ref<const std::string&>();
      if (line.rfind("#version", 0) == 0) continue;
      size_t sp = line.find(' ');
      PCM_CHECK(sp != std::string::npos && line.find(' ', sp + 1) == std::string::npos,
                "{}.merges[{}]: expected \"a b\" (two tokens separated by one space), got \"{}\"", where, i, line);
      a = line.substr(0, sp);
      b = line.substr(sp + 1);
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
      a = e[0].get<std::string>();
      b = e[1].get<std::string>();
    } else {
      fail("{}.merges[{}]: expected \"a b\" or [\"a\", \"b\"], got {}", where, i, e.dump());
    }
    auto ia = m->vocab_.find(a);
    PCM_CHECK(ia != m->vocab_.end(), "{}.merges[{}]: token \"{}\" is not in the vocabulary", where, i, a);
    auto ib = m->vocab_.find(b);
    PCM_CHECK(ib != m->vocab_.end(), "{}.merges[{}]: token \"{}\" is not in the vocabulary", where, i, b);
    size_t strip = m->has_prefix_ ? m->prefix_.size() : 0;
    PCM_CHECK(b.size() >= strip, "{}.merges[{}]: token \"{}\" is shorter than continuing_subword_prefix", where, i, b);
    merged = a;
    merged.append(b, strip, std::string::npos);
    auto im = m->vocab_.find(merged);
    PCM_CHECK(im != m->vocab_.end(), "{}.merges[{}]: merged token \"{}\" is not in the vocabulary", where, i, merged);
    m->merges_.insert_or_assign(ia->second, ib->second, {rank, im->second});
    ++rank;
    // Does this merge glue something that is not "▁" to a following "▁"?
    for (size_t at = merged.find(kMetaspace, 1); at != std::string::npos && !any_boundary_merge;
         at = merged.find(kMetaspace, at + 1)) {
      if (at < kMetaspace.size() || merged.compare(at - kMetaspace.size(), kMetaspace.size(), kMetaspace) != 0) {
        any_boundary_merge = true;
      }
    }
  }

  // One-character tokens of the Basic Multilingual Plane, for a hash-free lookup per character.
  m->bmp_ids_.assign(0x10000, -1);
  for (const auto& [tok, id] : m->vocab_) {
    if (tok.empty() || !utf8_valid(tok)) continue;
    size_t len;
    uint32_t cp = utf8_decode(tok, 0, &len);
    if (len == tok.size() && cp < 0x10000) m->bmp_ids_[cp] = id;
  }
  for (int b = 0; b < 256; ++b) {
    auto it = m->vocab_.find(fmt::format("<0x{:02X}>", b));
    m->byte_ids_[static_cast<size_t>(b)] = it == m->vocab_.end() ? -1 : it->second;
  }
  // Cutting before "▁" is exact when no merge can produce a symbol spanning such a cut (no merged
  // token has "▁" after a character other than "▁"), "▁" itself is a known character (so unknown
  // characters never fuse across the cut), and nothing depends on word edges.
  m->split_before_metaspace_ = !any_boundary_merge && m->vocab_.count(std::string(kMetaspace)) && !m->ignore_merges_ &&
                               !m->has_prefix_ && !m->has_suffix_;
  m->cache_.reset(new CacheShard[kCacheShards]);
  return m;
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size() || !has_token_[static_cast<size_t>(id)]) return nullptr;
  return &id_to_token_[static_cast<size_t>(id)];
}

int32_t BpeModel::unk_id() const {
  auto it = vocab_.find(*unk_token_);
  PCM_CHECK(it != vocab_.end(), "tokenizer model: unk_token \"{}\" is not in the vocabulary", *unk_token_);
  return it->second;
}

// ---- encoding ----

int32_t BpeModel::char_id(std::string_view ch, bool first, bool last, std::string& scratch) const {
  bool decorated = (has_prefix_ && !first) || (has_suffix_ && last);
  if (!decorated) {
    size_t len;
    uint32_t cp = utf8_decode(ch, 0, &len);
    if (cp < 0x10000) return bmp_ids_[cp];
    auto it = vocab_.find(ch);
    return it == vocab_.end() ? -1 : it->second;
  }
  scratch.clear();
  if (has_prefix_ && !first) scratch += prefix_;
  scratch += ch;
  if (has_suffix_ && last) scratch += suffix_;
  auto it = vocab_.find(scratch);
  return it == vocab_.end() ? -1 : it->second;
}

void BpeModel::merge_word(std::string_view w, std::vector<int32_t>& out) const {
  thread_local std::vector<Symbol> symbols;
  thread_local std::vector<Merge> heap;
  thread_local std::string scratch;
  symbols.clear();
  auto add = [&](int32_t c, size_t len) {
    int32_t n = static_cast<int32_t>(symbols.size());
    if (n > 0) symbols.back().next = n;
    symbols.push_back({c, n - 1, -1, static_cast<uint32_t>(len)});
  };

  int32_t unk = -1;
  size_t unk_len = 0;
  for (size_t i = 0; i < w.size();) {
    size_t len = utf8_seq_len(static_cast<uint8_t>(w[i]));
    bool first = i == 0, last = i + len >= w.size();
    std::string_view ch = w.substr(i, len);
    int32_t id = char_id(ch, first, last, scratch);
    i += len;
    if (id >= 0) {
      if (unk >= 0) {
        add(unk, unk_len);
        unk = -1;
      }
      add(id, len);
      continue;
    }
    if (byte_fallback_) {
      // The bytes of the (decorated) character, each as <0xNN>; all must exist.
      bool decorated = (has_prefix_ && !first) || (has_suffix_ && last);
      std::string_view bytes = ch;
      if (decorated) {
        scratch.clear();
        if (has_prefix_ && !first) scratch += prefix_;
        scratch += ch;
        if (has_suffix_ && last) scratch += suffix_;
        bytes = scratch;
      }
      bool all = true;
      for (char b : bytes) all = all && byte_ids_[static_cast<uint8_t>(b)] >= 0;
      if (all) {
        for (char b : bytes) add(byte_ids_[static_cast<uint8_t>(b)], 1);
        continue;
      }
    }
    if (unk_token_) {
      if (unk >= 0 && fuse_unk_) {
        unk_len += len;
      } else {
        if (unk >= 0) add(unk, unk_len);
        unk = unk_id();
        unk_len = len;
      }
    }
  }
  if (unk >= 0) add(unk, unk_len);

  // Merge lowest rank first, leftmost on ties (tokenizers/src/models/bpe/word.rs, merge_all).
  heap.clear();
  const int32_t n = static_cast<int32_t>(symbols.size());
  for (int32_t i = 0; i + 1 < n; ++i) {
    if (const auto* m = merges_.find(symbols[i].c, symbols[i + 1].c)) heap.push_back({m->rank, i, m->id});
  }
  std::make_heap(heap.begin(), heap.end(), MergeAfter{});
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), MergeAfter{});
    Merge top = heap.back();
    heap.pop_back();
    Symbol& cur = symbols[top.pos];
    if (cur.len == 0 || cur.next == -1) continue;
    int32_t next_pos = cur.next;
    Symbol right = symbols[next_pos];
    const auto* m = merges_.find(cur.c, right.c);
    if (!m || m->id != top.id) continue;  // an expired queue entry
    cur.c = top.id;
    cur.len += right.len;
    cur.next = right.next;
    symbols[next_pos].len = 0;
    if (right.next > -1 && right.next < n) symbols[right.next].prev = top.pos;
    if (cur.prev >= 0) {
      if (const auto* pm = merges_.find(symbols[cur.prev].c, cur.c)) {
        heap.push_back({pm->rank, cur.prev, pm->id});
        std::push_heap(heap.begin(), heap.end(), MergeAfter{});
      }
    }
    if (cur.next >= 0 && cur.next < n) {
      if (const auto* nm = merges_.find(cur.c, symbols[cur.next].c)) {
        heap.push_back({nm->rank, top.pos, nm->id});
        std::push_heap(heap.begin(), heap.end(), MergeAfter{});
      }
    }
  }
  for (const Symbol& s : symbols) {
    if (s.len != 0) out.push_back(s.c);
  }
}

void BpeModel::tokenize_segment(std::string_view word, std::vector<int32_t>& out) const {
  if (word.size() >= kCacheMaxWordBytes) {
    merge_word(word, out);
    return;
  }
  CacheShard& shard = cache_[std::hash<std::string_view>{}(word) % kCacheShards];
  {
    std::lock_guard<std::mutex> lock(shard.mutex);
    auto it = shard.map.find(word);
    if (it != shard.map.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  size_t start = out.size();
  merge_word(word, out);
  std::lock_guard<std::mutex> lock(shard.mutex);
  if (shard.map.size() < kCacheShardCapacity) {
    shard.map.emplace(std::string(word), std::vector<int32_t>(out.begin() + static_cast<std::ptrdiff_t>(start), out.end()));
  }
}

void BpeModel::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    auto it = vocab_.find(word);
    if (it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  if (!split_before_metaspace_) {
    tokenize_segment(word, out);
    return;
  }
  // Cut before every "▁" that follows a character other than "▁" (see split_before_metaspace_).
  size_t start = 0;
  size_t at = word.find(kMetaspace, 1);
  while (at != std::string_view::npos) {
    bool after_metaspace = at >= kMetaspace.size() && word.compare(at - kMetaspace.size(), kMetaspace.size(), kMetaspace) == 0;
    if (!after_metaspace && at > start) {
      tokenize_segment(word.substr(start, at - start), out);
      start = at;
    }
    at = word.find(kMetaspace, at + kMetaspace.size());
  }
  tokenize_segment(word.substr(start), out);
}

}  // namespace pcm
