#include "util/stop.hpp"

#include <csignal>

namespace nixery {

namespace {

// Set from a signal handler: hence sig_atomic_t.
volatile std::sig_atomic_t g_stop_requested = 0;

} // namespace

void request_stop() noexcept {
    g_stop_requested = 1;
}

bool stop_requested() noexcept {
    return g_stop_requested != 0;
}

} // namespace nixery
