// Internal to the public API: every exception of the library turned into latentforge::Error with
// its ErrorCode at the API boundary, and runtime defaults applied once.
#pragma once

#include <c10/util/Exception.h>
#include <fmt/format.h>

#include <filesystem>
#include <new>
#include <string>

#include "core/error.h"
#include "latentforge/latentforge.hpp"

namespace latentforge::detail {

[[noreturn]] inline void fail(ErrorCode code, const std::string& message) {
  throw Error(code, message);
}

// Runs fn; lf::Error (input rejected) becomes bad_input, allocation failures out_of_memory, and
// anything else internal, each keeping its one-line message.
template <typename F>
auto guarded(const char* where, F&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Error&) {
    throw;
  } catch (const lf::Error& e) {
    throw Error(ErrorCode::bad_input, e.what());
  } catch (const std::bad_alloc&) {
    throw Error(ErrorCode::out_of_memory, fmt::format("[{}] out of memory", where));
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    const bool oom = what.find("can't allocate memory") != std::string::npos ||
                     what.find("out of memory") != std::string::npos;
    throw Error(oom ? ErrorCode::out_of_memory : ErrorCode::internal,
                fmt::format("[{}] {}", where, what.substr(0, what.find('\n'))));
  } catch (const std::exception& e) {
    throw Error(ErrorCode::internal, fmt::format("[{}] {}", where, e.what()));
  }
}

// A path that must exist (not_found otherwise); empty is an invalid argument.
inline void require_path(const char* where, const std::string& what, const std::string& path) {
  if (path.empty())
    fail(ErrorCode::invalid_argument, fmt::format("[{}] {}: empty path", where, what));
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    fail(ErrorCode::not_found, fmt::format("[{}] {}: no such file or folder", where, path));
}

// All cores for LibTorch unless set_num_threads was called (LibTorch would use one here).
void apply_runtime_defaults();

}  // namespace latentforge::detail
