// GPT-2 byte-level alphabet: every byte is shown as a printable character (bytes_to_unicode), so a
// BPE vocabulary over these characters covers any byte string.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace pcm {

class Regex;

// The UTF-8 text of the character that stands for byte b.
std::string_view byte_level_char(uint8_t b);
// The byte a character stands for, or -1 if cp is not in the alphabet.
int byte_level_byte(uint32_t cp);

// Maps every byte of `s` to its character. If `zero_prefix_in`/`zero_prefix_out` are given, the
// latter receives the mapped length of the first zero_prefix_in bytes.
std::string byte_level_encode(std::string_view s, size_t zero_prefix_in = 0, size_t* zero_prefix_out = nullptr);

// The GPT-2 split regex HF's ByteLevel pre-tokenizer uses.
const Regex& gpt2_regex();

}  // namespace pcm
