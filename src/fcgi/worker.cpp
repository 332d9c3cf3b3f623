#include "fcgi/worker.hpp"

#include "util/log.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <fcgiapp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace nixery {

namespace {

// SIGTERM came: no new build is to start (worker_stopping()). The threads
// accept on until g_closing, once nothing of this process is in flight.
std::atomic<bool> g_stopping{false};
std::atomic<bool> g_closing{false};

// Requests answered later (Response::later) on threads of their own, and the
// most this process keeps: each holds a connection, and libfcgi select()s on
// descriptors below FD_SETSIZE.
std::atomic<int> g_later{0};
constexpr int k_max_later = 512;

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

// Ends the request and closes its connection, also when nginx asked to keep
// it (fastcgi_keep_conn, nginx/locations.conf.in): a thread never waits for
// a next request on a connection nginx may leave idle.
void finish(FCGX_Request& raw) {
    FCGX_Finish_r(&raw);
    FCGX_Free(&raw, 1);
}

std::string status_line(int status) {
    return "Status: " + std::to_string(status) + " " + std::string(status_text(status)) + "\r\n";
}

// Writes a deferred response on the request's own connection.
class FcgiWriter final : public ResponseWriter {
public:
    FcgiWriter(FCGX_Request& raw, bool head) : m_raw(raw), m_head(head) {}

    bool client_gone() override {
        pollfd p{m_raw.ipcFd, POLLRDHUP, 0};
        return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
    }
    bool stopping() override { return g_stopping.load(); }
    bool head_only() const override { return m_head; }

    void send(Response response) override {
        status = response.status;
        response.header("X-Request-Id", log::request_id());
        const auto bytes = serialize_response(response, m_head && !response.body_for_head);
        FCGX_PutStr(bytes.data(), static_cast<int>(bytes.size()), m_raw.out);
        log_fields.insert(log_fields.end(), response.log_fields.begin(), response.log_fields.end());
        log_level = std::max(log_level, response.log_level);
    }

    void start(int status_code, std::vector<std::pair<std::string, std::string>> headers) override {
        status = status_code;
        headers.emplace_back("X-Request-Id", log::request_id());
        std::string out = status_line(status_code);
        for (const auto& [name, value] : headers) {
            out += name + ": " + value + "\r\n";
        }
        out += "\r\n";
        FCGX_PutStr(out.data(), static_cast<int>(out.size()), m_raw.out);
        FCGX_FFlush(m_raw.out);
        log_fields.emplace_back("early_headers", true);
    }

    void send_body(std::string_view body) override {
        if (!m_head) {
            FCGX_PutStr(body.data(), static_cast<int>(body.size()), m_raw.out);
        }
    }

    void abort() override {
        // No FastCGI end-of-request: nginx sees the connection close early
        // and cuts the client's transfer (no last chunk).
        ::shutdown(m_raw.ipcFd, SHUT_RDWR);
        log_fields.emplace_back("aborted", true);
    }

    int status = 499; // nginx's "client closed request", until something is sent

private:
    FCGX_Request& m_raw;
    bool m_head;
};

void log_request(const Request& request, int status, std::chrono::steady_clock::time_point started,
                 const log::Fields& extra, log::Level level) {
    const auto ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
            .count();
    log::Fields fields{{"method", request.method},
                       {"path", request.path},
                       {"status", status},
                       {"duration_ms", ms}};
    fields.insert(fields.end(), extra.begin(), extra.end());
    log::write(level, "request", fields);
}

void start_answer(FCGX_Request* raw, Request request, std::function<void(ResponseWriter&)> later,
                  std::string_view route, Metrics& metrics,
                  std::chrono::steady_clock::time_point started);

// Runs `later` on a thread of its own with the accepted request `raw`,
// which it finishes and frees. False when no thread could be made (out of
// threads: TasksMax, RLIMIT_NPROC): `later` is dropped, `raw` still ours.
bool answer_later(FCGX_Request* raw, Request request, std::function<void(ResponseWriter&)> later,
                  std::string_view route, Metrics& metrics,
                  std::chrono::steady_clock::time_point started) {
    try {
        start_answer(raw, std::move(request), std::move(later), route, metrics, started);
        return true;
    } catch (const std::system_error& e) {
        log::error("no thread for a waiting request", {{"error", e.what()}});
        return false;
    }
}

void start_answer(FCGX_Request* raw, Request request, std::function<void(ResponseWriter&)> later,
                  std::string_view route, Metrics& metrics,
                  std::chrono::steady_clock::time_point started) {
    std::thread([raw, request = std::move(request), later = std::move(later), route, &metrics,
                 started, id = log::request_id()] {
        const log::RequestScope scope(id);
        FcgiWriter writer(*raw, request.method == "HEAD");
        try {
            later(writer);
        } catch (const std::exception& e) {
            log::error("request handler failed", {{"path", request.path}, {"error", e.what()}});
            writer.abort();
        }
        metrics.count_request(route, writer.status);
        finish(*raw);
        delete raw;
        log_request(request, writer.status, started, writer.log_fields, writer.log_level);
        g_later.fetch_sub(1);
    }).detach();
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
    // On the heap: libfcgi's streams point back at their request, so a
    // request handed to another thread (Response::later) must keep its
    // address; this thread then accepts with a new one.
    auto* held = new FCGX_Request;
    FCGX_InitRequest(held, listen_fd, FCGI_FAIL_ACCEPT_ON_INTR);
    while (!g_closing.load()) {
        state.accepting = true;
        auto& raw = *held;
        const int accepted = FCGX_Accept_r(&raw);
        state.accepting = false;
        if (accepted != 0) {
            if (g_closing.load()) {
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
        if (response.later && g_later.fetch_add(1) < k_max_later) {
            // The connection moves to the answering thread; this one
            // accepts with a fresh request.
            if (answer_later(held, request, std::move(response.later), response.route, metrics,
                             started)) {
                held = new FCGX_Request;
                FCGX_InitRequest(held, listen_fd, FCGI_FAIL_ACCEPT_ON_INTR);
                continue;
            }
            response.later = nullptr; // dropped with its thread: answered busy below
            g_later.fetch_sub(1);
            response = handler->busy(request);
        } else if (response.later) {
            g_later.fetch_sub(1);
            response = handler->busy(request);
        }
        // Counted before the client can see the answer, so a scrape that
        // follows a response always includes it.
        if (response.counted) {
            metrics.count_request(response.route, response.status);
        }
        const auto bytes =
            serialize_response(response, request.method == "HEAD" && !response.body_for_head);
        FCGX_PutStr(bytes.data(), static_cast<int>(bytes.size()), raw.out);
        finish(raw);
        log_request(request, response.status, started, response.log_fields, response.log_level);
    }
    FCGX_Free(held, 1);
    delete held;
}

} // namespace

bool worker_stopping() {
    return g_stopping.load();
}

int run_worker(int listen_fd, int threads, const HandlerFactory& make_handler, Metrics& metrics,
               const std::function<bool()>& busy) {
    if (FCGX_Init() != 0) {
        log::error("FCGX_Init failed");
        return 1;
    }
    std::signal(SIGPIPE, SIG_IGN);
    // The master ignores a hang-up (a terminal closing on `nixery run`);
    // workers must not die of it with requests in flight.
    std::signal(SIGHUP, SIG_IGN);
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
    // Without a parent (the master was killed) nobody will wait for a long
    // drain and a new pool may want the socket: requests get a moment.
    const auto drain_started = std::chrono::steady_clock::now();
    const auto orphaned = [&] {
        return getppid() != parent &&
               std::chrono::steady_clock::now() - drain_started > std::chrono::milliseconds(1500);
    };
    // While its builds and waiting requests go on, the process answers
    // what needs no new build: nginx's connections would otherwise wait in
    // the socket's backlog for as long as a build can take.
    while (g_later.load() > 0 || (busy && busy())) {
        if (orphaned()) {
            log::warn("worker stopping without its master; requests in flight are cut");
            std::_Exit(1);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    g_closing = true;
    FCGX_ShutdownPending();
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
        if (orphaned()) {
            log::warn("worker stopping without its master; requests in flight are cut");
            std::_Exit(1);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    for (auto& t : pool) {
        t.join();
    }
    // Requests answered later finish too (their waits give up on queued
    // builds when the worker drains).
    while (g_later.load() > 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return 0;
}

} // namespace nixery
