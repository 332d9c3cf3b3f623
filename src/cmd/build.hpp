// `nixery build NAME[:TAG] --output DIR | --docker-archive FILE`: builds an
// image in this process with the configuration `serve` reads from the
// environment, without nginx, the pool or a running instance, and writes it
// as an OCI image layout or a tarball for `docker load`. It reuses and fills
// the build cache of the state directory and storage it is given, so run
// against a running instance's, it builds images ahead for that instance.
#pragma once

#include <string>
#include <vector>

namespace nixery {

// Returns the process exit code: 0 written, 1 the build or the writing
// failed (the message says why), 2 bad arguments (an invalid name or tag),
// 130 or 143 stopped by SIGINT or SIGTERM (cmd/stop_signals).
int build_command(const std::vector<std::string>& args);

} // namespace nixery
