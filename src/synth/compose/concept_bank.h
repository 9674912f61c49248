// A bank of math concepts for programmatic problem composition (pcm-mini's phase-2 data): each concept
// turns an input quantity x (a literal number, or the answer of the previous part) into one part of a
// word problem, with its worked step and its exact value computed in code. No teacher model is needed,
// so every answer is known exactly.
#pragma once
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace pcm::synth::compose {

// An exact value: an integer, or (only for terminal concepts) a reduced fraction num/den.
struct Value {
  int64_t num = 0;
  int64_t den = 1;
  bool is_integer() const { return den == 1; }
  std::string latex() const;  // "56" or "\frac{3}{7}"
};

// One part of a composed problem. `x` is how the input reads in the problem ("A" or "12"); the part
// defines a new quantity named `name`.
struct Part {
  std::string question;  // "Let B be the remainder when A is divided by 9."
  std::string plan;      // "reduce A modulo 9"
  std::string work;      // "B = 56 mod 9 = 2, since 56 = 9 * 6 + 2."
  Value value;
};

struct Concept {
  std::string id;       // "combinations"
  std::string name;     // a PromptCoT-style foundational concept phrase
  std::string topic;    // arithmetic, number_theory, combinatorics, algebra, geometry, probability
  std::vector<std::string> tags;      // features of the concept's embedding (similarity)
  std::vector<std::string> keywords;  // lower-case words that mark the concept in a seed problem (co-occurrence)
  int64_t fresh_lo = 2, fresh_hi = 20;  // range of a literal first input
  bool terminal_only = false;           // its value may be a fraction: only the last part
  // The part for input value `x` written as `x_text`, defining `name`; nullopt when x does not suit
  // the concept (out of range, not divisible, ...).
  std::optional<Part> (*make)(int64_t x, const std::string& x_text, const std::string& name, std::mt19937_64& rng);
};

const std::vector<Concept>& concept_bank();
const Concept& concept_by_name(const std::string& name);  // by `name`; pcm::Error if unknown

// A uniform integer in [lo, hi] from the rng (platform-independent, unlike std distributions).
int64_t uniform_int(std::mt19937_64& rng, int64_t lo, int64_t hi);

}  // namespace pcm::synth::compose
