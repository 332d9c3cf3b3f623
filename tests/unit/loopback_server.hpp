// A tiny HTTP/1.1 server on 127.0.0.1 for the HTTP client's unit tests:
// each accepted connection runs a test-supplied function on its own
// thread, with helpers to read a request and write a reply. It behaves as
// badly as the test asks (closing a kept-alive connection, never
// answering), which is why it exists: no real server misbehaves on cue.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace testutil {

struct HttpRequestSeen {
    std::string method;
    std::string target; // as sent: path and query
    std::string headers;
    std::string body;
};

class LoopbackServer {
public:
    // `serve(fd, n)` handles connection number n (0, 1, …); the server
    // closes the fd after it returns.
    using Serve = std::function<void(int fd, int n)>;

    explicit LoopbackServer(Serve serve);
    // Shuts every connection down, so handlers blocked on them return,
    // and joins their threads.
    ~LoopbackServer();
    LoopbackServer(const LoopbackServer&) = delete;
    LoopbackServer& operator=(const LoopbackServer&) = delete;

    int port() const { return m_port; }
    std::string url(const std::string& target) const;

    // The next request on `fd` (headers and a Content-Length body), or
    // nullopt when the peer closed the connection.
    static std::optional<HttpRequestSeen> read_request(int fd);
    static void write_text(int fd, const std::string& text);
    // "HTTP/1.1 <status> X" with Content-Length, connection kept alive.
    static void reply(int fd, int status, const std::string& body);

private:
    void accept_loop();

    Serve m_serve;
    int m_listener = -1;
    int m_port = 0;
    std::atomic<bool> m_stopping{false};
    std::mutex m_mutex;
    std::vector<int> m_connections;
    std::vector<std::thread> m_threads;
    std::thread m_acceptor;
};

} // namespace testutil
