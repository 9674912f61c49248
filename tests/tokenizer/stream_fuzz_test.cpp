// StreamDecoder and fuzzing: random byte strings, random valid UTF-8 and random id sequences
// through encode / decode / StreamDecoder, asserting no crash, a clear error for invalid UTF-8,
// round trips, and the stream invariant (every chunk is valid UTF-8; chunks + flush == decode).
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <random>
#include <thread>

#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace pcm {
namespace {

using test::testdata;

const Tokenizer& tokenizer(const std::string& name) {
  static std::map<std::string, Tokenizer> cache;
  auto it = cache.find(name);
  if (it == cache.end()) it = cache.emplace(name, Tokenizer::from_dir(testdata("tokenizers/" + name))).first;
  return it->second;
}

// Streams `ids` and checks the invariant; returns the streamed text.
std::string stream_and_check(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip_special) {
  StreamDecoder stream(tok, skip_special);
  std::string all;
  for (int32_t id : ids) {
    std::string chunk = stream.push(id);
    EXPECT_TRUE(utf8_valid(chunk)) << "broken UTF-8 in a chunk after id " << id;
    all += chunk;
  }
  std::string rest = stream.flush();
  EXPECT_TRUE(utf8_valid(rest));
  all += rest;
  EXPECT_EQ(all, tok.decode(ids, skip_special));
  return all;
}

// A random code point of a mix of scripts, with some weight on spaces, digits and punctuation.
uint32_t random_code_point(std::mt19937& rng) {
  static const std::vector<std::pair<uint32_t, uint32_t>> ranges = {
      {0x20, 0x7E},     {0x20, 0x20},     {0x0A, 0x0A},     {0x09, 0x09},   {0x30, 0x39},   {0xA0, 0x17F},
      {0x300, 0x36F},   {0x391, 0x3C9},   {0x410, 0x44F},   {0x5D0, 0x5EA}, {0x627, 0x64A}, {0x900, 0x97F},
      {0x3040, 0x30FF}, {0x4E00, 0x9FFF}, {0xAC00, 0xD7A3}, {0x2000, 0x206F}, {0x2580, 0x2585},
      {0xFF01, 0xFF5E}, {0x1F300, 0x1F6FF}, {0x10000, 0x10FFFF}};
  auto [lo, hi] = ranges[rng() % ranges.size()];
  uint32_t cp = lo + static_cast<uint32_t>(rng() % (hi - lo + 1));
  if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0x41;
  return cp;
}

class Fuzz : public ::testing::TestWithParam<std::string> {};

TEST_P(Fuzz, RandomValidUtf8EncodesAndRoundTrips) {
  const Tokenizer& tok = tokenizer(GetParam());
  std::mt19937 rng(1234);
  for (int iter = 0; iter < 1500; ++iter) {
    std::string s;
    int n = static_cast<int>(rng() % 40);
    for (int i = 0; i < n; ++i) utf8_append(s, random_code_point(rng));
    if (rng() % 8 == 0) s += tok.eos_token();  // special-token text inside the input
    std::vector<int32_t> ids = tok.encode(s, rng() % 2 == 0);
    for (int32_t id : ids) ASSERT_LT(static_cast<size_t>(id), tok.vocab_size());
    std::string decoded = stream_and_check(tok, ids, rng() % 2 == 0);
    EXPECT_TRUE(utf8_valid(decoded));
  }
}

TEST_P(Fuzz, RandomBytesEncodeOrFailCleanly) {
  const Tokenizer& tok = tokenizer(GetParam());
  std::mt19937 rng(99);
  int valid = 0;
  for (int iter = 0; iter < 2000; ++iter) {
    std::string s(rng() % 24, '\0');
    for (char& c : s) c = static_cast<char>(rng() % 4 == 0 ? 0x80 + rng() % 0x80 : rng() % (iter % 2 ? 0x80 : 0x100));
    if (utf8_valid(s)) {
      ++valid;
      std::vector<int32_t> ids = tok.encode(s, false);
      stream_and_check(tok, ids, false);
    } else {
      EXPECT_THROW(tok.encode(s, false), Error);
    }
  }
  EXPECT_GT(valid, 200);
}

TEST_P(Fuzz, RandomIdsDecodeAndStream) {
  const Tokenizer& tok = tokenizer(GetParam());
  std::mt19937 rng(7);
  const auto v = static_cast<uint32_t>(tok.vocab_size());
  for (int iter = 0; iter < 1500; ++iter) {
    std::vector<int32_t> ids(rng() % 30);
    for (int32_t& id : ids) {
      // Mostly low ids (byte tokens, specials and short pieces for Mistral), some from anywhere.
      id = static_cast<int32_t>(rng() % 3 == 0 ? rng() % v : rng() % std::min<uint32_t>(v, 1200));
    }
    std::string text = stream_and_check(tok, ids, iter % 2 == 0);
    EXPECT_TRUE(utf8_valid(text));
  }
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, Fuzz, ::testing::Values("gpt-neox", "mistral-v3", "mistral-v3-metaspace"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

TEST(StreamDecoder, ByteFallbackCharactersStreamWhole) {
  const Tokenizer& tok = tokenizer("mistral-v3");
  // Characters outside the vocabulary become <0xNN> byte tokens; the stream must never split them.
  std::string text = "Emoji 🦜 and rare 𝔘 plus ༀ done";
  std::vector<int32_t> ids = tok.encode(text, true);
  size_t byte_tokens = 0;
  for (int32_t id : ids) byte_tokens += tok.is_byte_token(id);
  ASSERT_GE(byte_tokens, 4u);
  EXPECT_EQ(stream_and_check(tok, ids, true), text);
  // A dangling partial character: held back until flush, which gives U+FFFD per byte (as decode does).
  std::vector<int32_t> partial = {tok.encode("a", false).back(), *tok.token_to_id("<0xF0>"), *tok.token_to_id("<0x9F>")};
  StreamDecoder stream(tok);
  std::string out;
  for (int32_t id : partial) out += stream.push(id);
  out += stream.flush();
  EXPECT_EQ(out, tok.decode(partial, true));
  EXPECT_EQ(out, "a\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(StreamDecoder, ByteLevelMultiByteCharactersStreamWhole) {
  const Tokenizer& tok = tokenizer("gpt-neox");
  std::string text = "日本語のテキスト 🦜🦜 ünïcödé, Ελληνικά";
  std::vector<int32_t> ids = tok.encode(text, false);
  StreamDecoder stream(tok);
  std::string all;
  size_t chunks = 0;
  for (int32_t id : ids) {
    std::string c = stream.push(id);
    ASSERT_TRUE(utf8_valid(c));
    chunks += !c.empty();
    all += c;
  }
  all += stream.flush();
  EXPECT_EQ(all, text);
  EXPECT_GT(chunks, 5u);  // it streams, not just at flush
}

TEST(StreamDecoder, SkipsSpecialTokensAndReusesAfterFlush) {
  const Tokenizer& tok = tokenizer("mistral-v3");
  std::vector<int32_t> ids = tok.encode("Hello world", true);
  ids.push_back(tok.eos_id());
  StreamDecoder stream(tok, /*skip_special_tokens=*/true);
  std::string first;
  for (int32_t id : ids) first += stream.push(id);
  first += stream.flush();
  EXPECT_EQ(first, "Hello world");
  std::string second;
  for (int32_t id : tok.encode(" again", false)) second += stream.push(id);
  second += stream.flush();
  EXPECT_EQ(second, tok.decode(tok.encode(" again", false), true));
}

TEST(Tokenizer, SharedAcrossThreadsGivesTheSameIds) {
  const Tokenizer& tok = tokenizer("mistral-v3");
  std::vector<std::string> texts;
  std::mt19937 rng(5);
  for (int i = 0; i < 200; ++i) {
    std::string s;
    for (int k = 0; k < 60; ++k) utf8_append(s, random_code_point(rng));
    texts.push_back(s);
  }
  std::vector<std::vector<int32_t>> want;
  for (const auto& t : texts) want.push_back(tok.encode(t, true));
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      Tokenizer copy = tok;  // copies share the immutable state and the word cache
      for (size_t i = 0; i < texts.size(); ++i) {
        size_t k = (i * 7 + static_cast<size_t>(t) * 13) % texts.size();
        if (copy.encode(texts[k], true) != want[k]) ++mismatches;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace pcm
