#include "cmd/progress.hpp"

#include <cstdio>
#include <unistd.h>

namespace nixery {

Progress::Progress() : m_tty(::isatty(STDERR_FILENO) == 1) {
    if (m_tty) {
        m_thread = std::thread([this] { run(); });
    }
}

void Progress::stop() {
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        m_done = true;
    }
    m_wake.notify_all();
    if (m_thread.joinable()) {
        m_thread.join();
        std::fprintf(stderr, "\r\033[K");
    }
}

void Progress::phase(std::string text) {
    std::lock_guard<std::mutex> lock(m_mutex);
    if (m_tty && !m_phase.empty()) {
        std::fprintf(stderr, "\r\033[K%s done (%llds)\n", m_phase.c_str(), elapsed());
    }
    m_phase = std::move(text);
    m_detail.clear();
    m_started = std::chrono::steady_clock::now();
    if (!m_tty) {
        std::fprintf(stderr, "%s\n", m_phase.c_str());
    }
}

void Progress::detail(std::string text) {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_detail = std::move(text);
}

void Progress::finish(const std::string& summary) {
    phase("");
    std::fprintf(stderr, "%s\n", summary.c_str());
}

long long Progress::elapsed() const {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                            m_started)
        .count();
}

void Progress::run() {
    std::unique_lock<std::mutex> lock(m_mutex);
    while (!m_done) {
        if (!m_phase.empty()) {
            std::fprintf(stderr, "\r\033[K%s %s %llds", m_phase.c_str(), m_detail.c_str(),
                         elapsed());
        }
        m_wake.wait_for(lock, std::chrono::milliseconds(250));
    }
}

} // namespace nixery
