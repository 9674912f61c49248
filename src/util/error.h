// Errors: every failure a user can cause is a pcm::Error whose message names the file, tensor or field.
#pragma once
#include <fmt/format.h>
#include <stdexcept>
#include <string>
#include <utility>

namespace pcm {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <class... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace pcm

// PCM_CHECK(cond, "fmt", args...): throws pcm::Error with the formatted message when cond is false.
#define PCM_CHECK(cond, ...)        \
  do {                              \
    if (!(cond)) ::pcm::fail(__VA_ARGS__); \
  } while (0)
