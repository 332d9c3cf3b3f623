// `nixery serve`: the master process. It validates the configuration, opens
// (or inherits from systemd) the FastCGI socket, and keeps NIXERY_WORKERS
// worker processes alive, replacing any that dies. SIGTERM or SIGINT drains
// the workers (requests in flight finish) and exits.
#pragma once

#include "config.hpp"
#include "core/popularity.hpp"

namespace nixery {

int serve_command();

// The popularity data NIX_POPULARITY_URL names, fetched; empty without one.
Result<Popularity> load_popularity(const Config& config);

} // namespace nixery
