// The progress of a long command-line run on stderr: a line per phase, and
// on a terminal one line that updates in place with the elapsed time and a
// detail (how many files are read, packages ready).
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace nixery {

class Progress {
public:
    Progress();
    ~Progress() { stop(); }
    Progress(const Progress&) = delete;
    Progress& operator=(const Progress&) = delete;

    // Stops updating the line and clears it, so that what is printed next
    // (an error) starts a line of its own and is not drawn over.
    void stop();
    void phase(std::string text);
    void detail(std::string text);
    void finish(const std::string& summary);
    bool tty() const { return m_tty; }

private:
    long long elapsed() const;
    void run();

    bool m_tty;
    std::mutex m_mutex;
    std::condition_variable m_wake;
    bool m_done = false;
    std::string m_phase;
    std::string m_detail;
    std::chrono::steady_clock::time_point m_started = std::chrono::steady_clock::now();
    std::thread m_thread;
};

} // namespace nixery
