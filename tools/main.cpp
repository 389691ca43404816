// latentforge: command-line entry point. Parses the global option table, dispatches to a
// subcommand, and turns any error into one line on stderr and a non-zero exit.
#include <c10/util/Exception.h>

#include <cstdio>
#include <filesystem>

#include "cli.h"
#include "core/error.h"
#include "core/log.h"
#include "core/runtime.h"
#include "models/conv_algorithm.h"

namespace lf::cli {

void apply_globals(const GlobalOptions& globals) {
  init_logging(globals.log_level);
  set_threads(globals.threads);
  seed_everything(globals.seed);
}

void prepare_output(const std::string& path) {
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
}

}  // namespace lf::cli

int main(int argc, char** argv) {
  using namespace lf::cli;
  GlobalOptions globals;
  CLI::App app{
      "latentforge: train, evaluate and run image autoencoders (AE, VAE, VQ-VAE, VQGAN, SD KL-AE)"};
  app.set_version_flag("--version", std::string(LF_VERSION));
  app.require_subcommand(1);
  app.fallthrough();

  // The global option table: name, help, default (shown), environment variable.
  app.add_option("--device", globals.device, "cpu, cuda, cuda:N or auto")
      ->capture_default_str()
      ->envname("LF_DEVICE");
  app.add_option("--threads", globals.threads, "CPU threads for LibTorch (0 = all cores)")
      ->capture_default_str()
      ->envname("LF_THREADS")
      ->check(CLI::NonNegativeNumber);
  // Applied while parsing (before any subcommand runs); `info` shows the resulting choice.
  app.add_option_function<std::string>(
         "--conv",
         [](const std::string& name) { lf::set_conv_algorithm(lf::parse_conv_algorithm(name)); },
         "3x3 convolutions on the CPU: auto (oneDNN Winograd for large inference layers on "
         "avx512_core CPUs) or direct (LibTorch's convolution only)")
      ->default_str("auto")
      ->envname("LF_CONV")
      ->check(CLI::IsMember({"auto", "direct"}));
  app.add_option("--seed", globals.seed, "random seed")->capture_default_str()->envname("LF_SEED");
  app.add_option("--log-level", globals.log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str()
      ->envname("LF_LOG_LEVEL");

  register_info(app, globals);
  register_preview(app, globals);
  register_train(app, globals);
  register_eval(app, globals);
  register_score(app, globals);
  register_bench(app, globals);
  register_model_commands(app, globals);
  register_sample(app, globals);
  register_edges(app, globals);
  register_import(app, globals);
  register_serve(app, globals);
  for (int i = 0; i < argc; ++i) globals.command_line += (i ? " " : "") + std::string(argv[i]);
  globals.argv.assign(argv, argv + argc);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "latentforge: error: %s\n", e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "latentforge: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
