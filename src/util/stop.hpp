// A process-wide request to stop, made from a command's SIGINT or SIGTERM
// handler (cmd/stop_signals): run_process stops the programs it runs as a
// timeout does and starts no more, and a wait for a lock gives up, so the
// command can end without leaving a single-user Nix's builders behind.
#pragma once

namespace nixery {

// Only sets a flag: async-signal-safe.
void request_stop() noexcept;

bool stop_requested() noexcept;

} // namespace nixery
