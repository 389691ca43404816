// Shared pieces of the latentforge command line: the global options and subcommand registration.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace lf::cli {

// Global options (apply to every subcommand); each has a default and an environment variable.
struct GlobalOptions {
  std::string device = "auto";     // --device cpu|cuda|cuda:N|auto     LF_DEVICE
  int threads = 0;                 // --threads N (0 = all cores)         LF_THREADS
  uint64_t seed = 0;               // --seed N                            LF_SEED
  std::string log_level = "info";  // --log-level                        LF_LOG_LEVEL
  std::string command_line;        // the whole invocation, saved in run folders
  std::vector<std::string> argv;   // the same, word by word (train --nproc starts it again)
};

// Applies threads, seed and logging.
void apply_globals(const GlobalOptions& globals);

// Each subcommand file provides one of these; main.cpp calls them all.
void register_info(CLI::App& app, const GlobalOptions& globals);
void register_preview(CLI::App& app, const GlobalOptions& globals);
void register_serve(CLI::App& app, const GlobalOptions& globals);  // tools/server/
void register_import(CLI::App& app, const GlobalOptions& globals);
void register_train(CLI::App& app, const GlobalOptions& globals);
void register_eval(CLI::App& app, const GlobalOptions& globals);
void register_score(CLI::App& app, const GlobalOptions& globals);
void register_bench(CLI::App& app, const GlobalOptions& globals);
void register_model_commands(
    CLI::App& app,
    const GlobalOptions& globals);  // reconstruct encode decode interpolate
void register_sample(CLI::App& app, const GlobalOptions& globals);
void register_edges(CLI::App& app, const GlobalOptions& globals);

// Creates the parent folder of an output path.
void prepare_output(const std::string& path);

}  // namespace lf::cli
