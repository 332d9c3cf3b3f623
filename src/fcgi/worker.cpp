#include "fcgi/worker.hpp"

#include "util/log.hpp"

#include <atomic>
#include <chrono>
#include <csignal>
#include <fcgiapp.h>
#include <pthread.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace nixery {

namespace {

std::atomic<bool> g_stopping{false};

void on_wake(int) {} // only interrupts accept()

Request read_request(const FCGX_Request& raw) {
    Request r;
    for (char** p = raw.envp; p != nullptr && *p != nullptr; ++p) {
        std::string_view entry(*p);
        const auto eq = entry.find('=');
        if (eq == std::string_view::npos) {
            continue;
        }
        auto name = std::string(entry.substr(0, eq));
        auto value = std::string(entry.substr(eq + 1));
        if (name == "REQUEST_METHOD") {
            r.method = value;
        } else if (name == "DOCUMENT_URI") {
            r.path = value;
        } else if (name == "QUERY_STRING") {
            r.query = value;
        } else if (name == "HTTP_HOST") {
            r.host = value;
        }
        r.params.emplace_back(std::move(name), std::move(value));
    }
    return r;
}

// nginx's $request_id (REQUEST_ID, 32 hex digits) when it sends one, so the
// access log and ours share it; otherwise one of our own.
std::string request_id_of(const Request& r) {
    for (const auto& [name, value] : r.params) {
        if (name == "REQUEST_ID" && value.size() == 32 &&
            value.find_first_not_of("0123456789abcdef") == std::string::npos) {
            return value;
        }
    }
    return log::new_request_id();
}

// Per-thread state the draining main thread looks at.
struct ThreadState {
    std::atomic<bool> accepting{false}; // blocked (or about to block) in accept()
    std::atomic<bool> done{false};
};

void serve_thread(int listen_fd, const HandlerFactory& make_handler, Metrics& metrics,
                  ThreadState& state) {
    std::unique_ptr<RequestHandler> handler;
    try {
        handler = make_handler();
    } catch (const std::exception& e) {
        log::error("worker thread set-up failed", {{"error", e.what()}});
        std::_Exit(1);
    }
    FCGX_Request raw;
    FCGX_InitRequest(&raw, listen_fd, FCGI_FAIL_ACCEPT_ON_INTR);
    while (!g_stopping.load()) {
        state.accepting = true;
        const int accepted = FCGX_Accept_r(&raw);
        state.accepting = false;
        if (accepted != 0) {
            if (g_stopping.load()) {
                break;
            }
            continue; // interrupted or a connection that went away
        }
        const auto started = std::chrono::steady_clock::now();
        const auto request = read_request(raw);
        const log::RequestScope scope(request_id_of(request));
        Response response;
        try {
            response = handler->handle(request);
        } catch (const std::exception& e) {
            log::error("request handler failed", {{"path", request.path}, {"error", e.what()}});
            response = handler->failed(request);
        }
        response.header("X-Request-Id", log::request_id());
        // Counted before the client can see the answer, so a scrape that
        // follows a response always includes it.
        metrics.count_request(response.route, response.status);
        const auto bytes = serialize_response(response, request.method == "HEAD");
        FCGX_PutStr(bytes.data(), static_cast<int>(bytes.size()), raw.out);
        FCGX_Finish_r(&raw);

        const auto ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
                .count();
        log::Fields fields{{"method", request.method},
                           {"path", request.path},
                           {"status", response.status},
                           {"duration_ms", ms}};
        fields.insert(fields.end(), response.log_fields.begin(), response.log_fields.end());
        log::info("request", fields);
    }
    FCGX_Free(&raw, 1);
}

} // namespace

int run_worker(int listen_fd, int threads, const HandlerFactory& make_handler, Metrics& metrics) {
    if (FCGX_Init() != 0) {
        log::error("FCGX_Init failed");
        return 1;
    }
    std::signal(SIGPIPE, SIG_IGN);
    struct sigaction wake {};
    wake.sa_handler = on_wake; // no SA_RESTART: accept() must return EINTR
    sigaction(SIGUSR1, &wake, nullptr);

    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr); // threads inherit the mask

    const pid_t parent = getppid();
    std::vector<std::thread> pool;
    std::vector<ThreadState> states(static_cast<std::size_t>(threads));
    for (auto& state : states) {
        pool.emplace_back([&] {
            serve_thread(listen_fd, make_handler, metrics, state);
            state.done = true;
        });
    }

    int sig = 0;
    sigwait(&stop_signals, &sig);
    log::info("worker draining", {{"signal", sig}});
    g_stopping = true;
    FCGX_ShutdownPending();
    // Without a parent (the master was killed) nobody will wait for a long
    // drain and a new pool may want the socket: requests get a moment.
    const auto drain_started = std::chrono::steady_clock::now();
    // Wake threads blocked in accept(); busy ones are left alone to finish
    // their request (a signal would interrupt their system calls). A wake-up
    // that arrives just before accept() blocks is lost, hence the retries.
    for (;;) {
        bool all_done = true;
        for (std::size_t i = 0; i < pool.size(); ++i) {
            if (!states[i].done) {
                all_done = false;
                if (states[i].accepting) {
                    pthread_kill(pool[i].native_handle(), SIGUSR1);
                }
            }
        }
        if (all_done) {
            break;
        }
        if (getppid() != parent &&
            std::chrono::steady_clock::now() - drain_started > std::chrono::milliseconds(1500)) {
            log::warn("worker stopping without its master; requests in flight are cut");
            std::_Exit(1);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    for (auto& t : pool) {
        t.join();
    }
    return 0;
}

} // namespace nixery
