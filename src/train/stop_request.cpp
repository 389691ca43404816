// The stop request: see stop_request.h.
#include "train/stop_request.h"

#include <signal.h>

#include <atomic>

namespace lf {

namespace {

std::atomic<bool> g_stop_requested{false};
static_assert(std::atomic<bool>::is_always_lock_free, "used from a signal handler");

extern "C" void on_stop_signal(int signal_number) {
  g_stop_requested.store(true);
  // The next signal of this kind takes its default action: a second Ctrl-C ends the run at once.
  struct sigaction action {};
  action.sa_handler = SIG_DFL;
  sigemptyset(&action.sa_mask);
  sigaction(signal_number, &action, nullptr);
}

}  // namespace

void install_stop_signals() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

void request_training_stop() {
  g_stop_requested.store(true);
}

bool training_stop_requested() {
  return g_stop_requested.load();
}

void clear_training_stop() {
  g_stop_requested.store(false);
}

}  // namespace lf
