// Asking a training run to stop at the end of its current step: the trainer then writes a
// checkpoint and returns, so `train --resume` continues exactly there. `latentforge train` turns
// SIGINT and SIGTERM into such a request (the web UI's Stop sends SIGTERM); a second signal ends
// the process at once.
#pragma once

namespace lf {

void install_stop_signals();  // SIGINT, SIGTERM -> request_training_stop(), once
void request_training_stop();
bool training_stop_requested();
void clear_training_stop();

}  // namespace lf
