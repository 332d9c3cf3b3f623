// `nixery prebuild IMAGE[:TAG]...`: builds images ahead of their first pull,
// in this process, against the instance the environment configures (the
// same database, storage and locks as its `serve`), so popular images are
// ready before anyone waits for them. An image that is built already, or
// that the running server is building, is not built again.
#pragma once

#include <string>
#include <vector>

namespace nixery {

// Returns the process exit code: 0 every image is ready, 1 some failed,
// 2 bad arguments, 130 or 143 stopped by SIGINT or SIGTERM (cmd/stop_signals).
int prebuild_command(const std::vector<std::string>& args);

} // namespace nixery
