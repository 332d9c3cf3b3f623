// `nixery serve`: the master process. It validates the configuration, opens
// (or inherits from systemd) the FastCGI socket, and keeps NIXERY_WORKERS
// worker processes alive, replacing any that dies. SIGTERM or SIGINT drains
// the workers (requests in flight finish) and exits.
#pragma once

namespace nixery {

int serve_command();

} // namespace nixery
