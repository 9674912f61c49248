// `pcm synth compose` and `pcm synth gsm8k-chat`: pcm-mini's training data without a teacher model
// (src/synth/compose/). Added to the `synth` command by cmd_synth.cpp.
#pragma once
#include <CLI/CLI.hpp>

namespace pcm::cli {
void add_compose_subcommands(CLI::App* synth);
}
