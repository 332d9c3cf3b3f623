#include "cmd/stop_signals.hpp"

#include "util/stop.hpp"

#include <csignal>

namespace nixery {

namespace {

volatile std::sig_atomic_t g_stop_signal = 0;

void on_stop_signal(int sig) {
    g_stop_signal = sig;
    request_stop();
}

} // namespace

void stop_on_signals() {
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESETHAND; // the second signal: the default, the end
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
}

int stop_signal() {
    return g_stop_signal;
}

const char* stop_signal_name() {
    switch (g_stop_signal) {
    case SIGINT:
        return "SIGINT";
    case SIGTERM:
        return "SIGTERM";
    default:
        return "";
    }
}

int stopped_status(int otherwise) {
    return g_stop_signal != 0 ? 128 + g_stop_signal : otherwise;
}

} // namespace nixery
