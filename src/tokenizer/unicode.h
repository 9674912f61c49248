// Unicode character properties and normalisation forms with the meanings HF tokenizers (Rust) gives
// them: char::is_whitespace, char::is_numeric, is_punctuation, is_combining_mark, to_lowercase,
// and unicode-normalization's NFC/NFD/NFKC/NFKD (via utf8proc).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace pcm {

bool is_white_space(uint32_t cp);       // Unicode White_Space (Rust char::is_whitespace)
bool is_numeric(uint32_t cp);           // General category N* (Rust char::is_numeric)
bool is_punctuation(uint32_t cp);       // ASCII punctuation or category P* (HF Punctuation)
bool is_combining_mark(uint32_t cp);    // category Mn/Mc/Me
bool is_rust_word_char(uint32_t cp);    // Rust regex \w: Alphabetic, M, Nd, Pc, Join_Control

// Appends Rust's char::to_lowercase(cp) (full mapping: U+0130 becomes "i\u0307").
void append_lowercase(std::string& out, uint32_t cp);

enum class NormalForm { NFC, NFD, NFKC, NFKD };
// Normalises valid UTF-8.
std::string unicode_normalize(std::string_view s, NormalForm form);

}  // namespace pcm
