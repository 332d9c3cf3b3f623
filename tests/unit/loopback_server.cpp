#include "loopback_server.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <netinet/in.h>
#include <stdexcept>
#include <sys/socket.h>
#include <unistd.h>

namespace testutil {

LoopbackServer::LoopbackServer(Serve serve) : m_serve(std::move(serve)) {
    m_listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (m_listener < 0 || ::bind(m_listener, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        ::listen(m_listener, 16) != 0 ||
        ::getsockname(m_listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        throw std::runtime_error("the loopback server cannot listen");
    }
    m_port = ntohs(addr.sin_port);
    m_acceptor = std::thread([this] { accept_loop(); });
}

LoopbackServer::~LoopbackServer() {
    m_stopping = true;
    ::shutdown(m_listener, SHUT_RDWR);
    m_acceptor.join();
    ::close(m_listener);
    {
        std::lock_guard lock(m_mutex);
        for (const int fd : m_connections) {
            ::shutdown(fd, SHUT_RDWR);
        }
    }
    for (auto& t : m_threads) {
        t.join();
    }
    for (const int fd : m_connections) {
        ::close(fd);
    }
}

std::string LoopbackServer::url(const std::string& target) const {
    return "http://127.0.0.1:" + std::to_string(m_port) + target;
}

void LoopbackServer::accept_loop() {
    for (int n = 0;; ++n) {
        const int fd = ::accept4(m_listener, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) {
            if (m_stopping) {
                return;
            }
            continue;
        }
        std::lock_guard lock(m_mutex);
        m_connections.push_back(fd);
        m_threads.emplace_back([this, fd, n] {
            m_serve(fd, n);
            ::shutdown(fd, SHUT_RDWR);
        });
    }
}

std::optional<HttpRequestSeen> LoopbackServer::read_request(int fd) {
    std::string data;
    char buf[4096];
    std::size_t end;
    while ((end = data.find("\r\n\r\n")) == std::string::npos) {
        const auto got = ::recv(fd, buf, sizeof buf, 0);
        if (got <= 0) {
            return std::nullopt;
        }
        data.append(buf, static_cast<std::size_t>(got));
    }
    HttpRequestSeen seen;
    const auto line_end = data.find("\r\n");
    const auto line = data.substr(0, line_end);
    const auto sp1 = line.find(' ');
    const auto sp2 = line.rfind(' ');
    seen.method = line.substr(0, sp1);
    seen.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    seen.headers = data.substr(line_end + 2, end - line_end);
    std::size_t length = 0;
    if (const auto at = seen.headers.find("Content-Length: "); at != std::string::npos) {
        length = std::stoul(seen.headers.substr(at + 16));
    }
    seen.body = data.substr(end + 4);
    while (seen.body.size() < length) {
        const auto got = ::recv(fd, buf, sizeof buf, 0);
        if (got <= 0) {
            return std::nullopt;
        }
        seen.body.append(buf, static_cast<std::size_t>(got));
    }
    return seen;
}

void LoopbackServer::write_text(int fd, const std::string& text) {
    std::size_t sent = 0;
    while (sent < text.size()) {
        const auto n = ::send(fd, text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) {
            return;
        }
        sent += static_cast<std::size_t>(n);
    }
}

void LoopbackServer::reply(int fd, int status, const std::string& body) {
    write_text(fd, "HTTP/1.1 " + std::to_string(status) +
                       " X\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
}

} // namespace testutil
