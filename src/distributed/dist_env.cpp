// Reading the distributed environment: see dist_env.h.
#include "distributed/dist_env.h"

#include <cstdlib>

#include "core/error.h"

namespace lf {

namespace {

constexpr const char* kDistEnv = "distributed";

std::optional<std::string> env_text(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  return std::string(v);
}

int env_int(const char* name, int lo, int hi, std::optional<int> fallback = std::nullopt) {
  const auto text = env_text(name);
  if (!text) {
    if (fallback) return *fallback;
    fail(kDistEnv, "{} is not set (expected an integer; torchrun sets it)", name);
  }
  try {
    size_t used = 0;
    const long v = std::stol(*text, &used);
    if (used == text->size() && v >= lo && v <= hi) return static_cast<int>(v);
  } catch (const std::exception&) {
  }
  fail(kDistEnv, "{}='{}': expected an integer in [{}, {}]", name, *text, lo, hi);
}

}  // namespace

std::optional<DistEnv> DistEnv::from_environment() {
  if (!env_text("WORLD_SIZE")) return std::nullopt;
  DistEnv e;
  e.world_size = env_int("WORLD_SIZE", 1, 1 << 20);
  e.rank = env_int("RANK", 0, e.world_size - 1);
  e.local_world_size = env_int("LOCAL_WORLD_SIZE", 1, e.world_size, 1);
  e.local_rank = env_int("LOCAL_RANK", 0, e.local_world_size - 1, e.rank % e.local_world_size);
  if (e.world_size > 1) {
    const auto addr = env_text("MASTER_ADDR");
    if (!addr)
      fail(kDistEnv, "MASTER_ADDR is not set (expected the rank-0 host; torchrun sets it)");
    e.master_addr = *addr;
    e.master_port = env_int("MASTER_PORT", 1, 65535);
  }
  if (const auto agent = env_text("TORCHELASTIC_USE_AGENT_STORE"); agent && *agent == "True") {
    e.agent_store = true;
    e.store_prefix =
        "/worker/attempt_" + std::to_string(env_int("TORCHELASTIC_RESTART_COUNT", 0, 1 << 20, 0));
  }
  return e;
}

}  // namespace lf
