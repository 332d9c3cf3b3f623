// Ctrl-C and SIGTERM for the commands that run long in the foreground
// (`build`, `prebuild`, `popcount`). Ctrl-C reaches only nixery (Nix runs
// in process groups of its own), and a single-user Nix killed with it could
// not stop its builders, which would run on as init's: the first SIGINT or
// SIGTERM stops the running Nix as a timeout does (request_stop: SIGTERM to
// its group, SIGKILL 5 s on), and the command, seeing stop_signal(), begins
// nothing more and exits with stopped_status(); a second one ends the
// process at once.
#pragma once

namespace nixery {

// Installs the handler (once the command has checked its arguments).
void stop_on_signals();

// The signal (SIGINT or SIGTERM) that asked the command to stop, 0 while
// none did.
int stop_signal();

// "SIGINT" or "SIGTERM", for messages; "" while no signal came.
const char* stop_signal_name();

// 128 + the signal, as a shell reports a process the signal ended, when
// one came; `otherwise` while none did.
int stopped_status(int otherwise);

} // namespace nixery
