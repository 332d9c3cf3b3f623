// `nixery run`: a whole local instance in the foreground, as `make run`
// starts it. Renders the nginx configuration into NIXERY_STATE_DIR, starts
// the worker pool (`nixery serve`) and nginx, and stops both cleanly on
// Ctrl-C or SIGTERM; if either dies, the other is stopped too.
#pragma once

namespace nixery {

int run_command(const char* self);

} // namespace nixery
