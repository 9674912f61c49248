// Subcommands register themselves: each src/cli/cmd_<name>.cpp adds one with PCM_REGISTER_COMMAND,
// so a new command never touches main.cpp.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace pcm::cli {

struct Command {
  std::string name;
  std::string help;
  // Adds the options to `sub` and sets its callback. Option storage must live in the closure
  // (e.g. a shared_ptr to an options struct) because it outlives this call.
  std::function<void(CLI::App* sub)> setup;
};

std::vector<Command>& command_registry();
int register_command(Command command);

}  // namespace pcm::cli

#define PCM_CONCAT_INNER(a, b) a##b
#define PCM_CONCAT(a, b) PCM_CONCAT_INNER(a, b)
#define PCM_REGISTER_COMMAND(...) \
  static const int PCM_CONCAT(pcm_command_registered_, __LINE__) = ::pcm::cli::register_command(__VA_ARGS__)
