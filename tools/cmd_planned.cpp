// Subcommands that are part of the interface but not built yet: they say so and exit non-zero.
#include "cli.h"
#include "core/error.h"

namespace lf::cli {

void register_planned(CLI::App& app, const GlobalOptions& globals) {
  const std::pair<const char*, const char*> planned[] = {
      {"serve", "local web UI"},
  };
  for (const auto& [name, help] : planned) {
    auto* cmd = app.add_subcommand(name, std::string(help) + " (not available yet)");
    cmd->allow_extras();
    const std::string command = name;
    cmd->callback([command] {
      throw Error(fmt::format("'{}' is not available yet in latentforge {}", command, LF_VERSION));
    });
  }
}

}  // namespace lf::cli
