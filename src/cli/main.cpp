// pcm: one binary, one subcommand per file (src/cli/cmd_*.cpp). Errors print one line and exit 1.
#include <algorithm>
#include <cstdio>
#include <new>
#include <stdexcept>

#include "cli/command.h"
#include "util/error.h"

namespace pcm::cli {

std::vector<Command>& command_registry() {
  static std::vector<Command> commands;
  return commands;
}

int register_command(Command command) {
  command_registry().push_back(std::move(command));
  return 0;
}

}  // namespace pcm::cli

int main(int argc, char** argv) {
  CLI::App app{"pcm: attention-free reasoning models (Mamba-2) - inference, serving, training, evaluation"};
  app.require_subcommand(1);
  auto& commands = pcm::cli::command_registry();
  std::sort(commands.begin(), commands.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  for (auto& c : commands) c.setup(app.add_subcommand(c.name, c.help));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 prints the message; its exit codes (105, 109, ...) are not the one this tool documents for errors.
    return app.exit(e) == 0 ? 0 : 1;
  } catch (const pcm::Error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fflush(stdout);
    std::fprintf(stderr, "error: out of memory (std::bad_alloc): a size given on the command line or in a config "
                         "file may be too large for this machine\n");
    return 1;
  } catch (const std::length_error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "error: a size given on the command line or in a config file is too large (%s)\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
