// Shared test helpers: relative error, temp directories, running the pcm binary.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "util/error.h"

namespace pcm::test {

// PCM_TESTDATA_DIR overrides the compiled-in path (tests run from a copied tree, e.g. on the GPU machine).
inline std::string testdata(const std::string& rel) {
  const char* dir = std::getenv("PCM_TESTDATA_DIR");
  return std::string(dir && *dir ? dir : PCM_TESTDATA) + "/" + rel;
}

// What f throws as pcm::Error (its message), or "" when it returns: tests of refused inputs.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// ||a - b|| / ||b|| in float64.
inline double rel_error(const float* a, const float* b, size_t n) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < n; ++i) {
    double d = static_cast<double>(a[i]) - b[i];
    num += d * d;
    den += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}
inline double rel_error(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  return rel_error(a.data(), b.data(), std::min(a.size(), b.size()));
}

// PCM_BINARY_PATH overrides the compiled-in pcm path, like PCM_TESTDATA_DIR.
inline std::string pcm_binary() {
  const char* bin = std::getenv("PCM_BINARY_PATH");
  return bin && *bin ? bin : PCM_BINARY;
}

// A fresh directory under the system temp dir, removed when the object goes away.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "pcm-test-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct CommandResult {
  int exit_code;
  std::string out;  // stdout
  std::string err;  // stderr
  std::string all() const { return out + err; }
};

// Runs `pcm ARGS` (a shell-quoted argument string), capturing stdout and stderr separately.
// `input` (if any) is fed to its standard input.
inline CommandResult run_pcm(const std::string& args, const std::string& input = "") {
  TempDir tmp;
  std::string in_path = tmp.file("stdin"), err_path = tmp.file("stderr");
  {
    FILE* f = fopen(in_path.c_str(), "wb");
    fwrite(input.data(), 1, input.size(), f);
    fclose(f);
  }
  std::string cmd = pcm_binary() + " " + args + " <" + in_path + " 2>" + err_path;
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = pclose(p);
  std::string err;
  if (FILE* f = fopen(err_path.c_str(), "rb")) {
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) err.append(buf, n);
    fclose(f);
  }
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out, err};
}

// Runs a whole shell command line (e.g. with an environment prefix), capturing stdout and stderr.
inline CommandResult run_command(const std::string& command) {
  TempDir tmp;
  const std::string err_path = tmp.file("stderr");
  FILE* p = popen((command + " </dev/null 2>" + err_path).c_str(), "r");
  std::string out, err;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  if (FILE* f = fopen(err_path.c_str(), "rb")) {
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) err.append(buf, n);
    fclose(f);
  }
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out, err};
}

}  // namespace pcm::test
