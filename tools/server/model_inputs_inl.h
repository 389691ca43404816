// with_clean_errors (model_inputs.h), a template: included from there only.
#pragma once

#include <c10/util/Exception.h>

#include "server/job_queue.h"

namespace lf::serve {

template <typename F>
auto with_clean_errors(const ServedModel& model, const char* what, F&& work) -> decltype(work()) {
  try {
    return work();
  } catch (const JobCancelled&) {
    throw;
  } catch (const c10::Error& e) {
    throw Error(without_path(fmt::format("[{}] {}: {}", what, model.id, e.what_without_backtrace()),
                             model));
  } catch (const std::exception& e) {
    throw Error(without_path(e.what(), model));
  }
}

}  // namespace lf::serve
