// HttpClient against a loopback server that misbehaves on cue.
#include "http/client.hpp"
#include "loopback_server.hpp"
#include "testutil.hpp"

#include <chrono>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <mutex>
#include <sys/socket.h>
#include <unistd.h>

using namespace nixery;
using testutil::LoopbackServer;

TEST_SUITE_BEGIN("http");

TEST_CASE("HttpClient::perform") {
    HttpClient client;

    SUBCASE("the path goes out as written, dot segments and all") {
        std::mutex mutex;
        std::string target;
        LoopbackServer server([&](int fd, int) {
            const auto seen = LoopbackServer::read_request(fd);
            if (seen) {
                std::lock_guard lock(mutex);
                target = seen->target;
                LoopbackServer::reply(fd, 200, "ok");
            }
        });
        HttpRequest request;
        request.url = server.url("/bucket/a/./b/../c");
        const auto r = client.perform(request);
        REQUIRE_MESSAGE(r, r.error().message);
        std::lock_guard lock(mutex);
        CHECK(target == "/bucket/a/./b/../c");
    }

    SUBCASE("a redirect is followed only when the request asks, and never on a handle that "
            "did") {
        LoopbackServer server([&](int fd, int) {
            while (const auto seen = LoopbackServer::read_request(fd)) {
                if (seen->target == "/moved") {
                    LoopbackServer::write_text(fd, "HTTP/1.1 302 Found\r\nLocation: /here\r\n"
                                                   "X-Hop: first\r\nContent-Length: 5\r\n\r\n"
                                                   "moved");
                } else {
                    LoopbackServer::reply(fd, 200, "here");
                }
            }
        });
        HttpRequest request;
        request.url = server.url("/moved");
        request.follow_redirects = true;
        const auto followed = client.perform(request);
        REQUIRE_MESSAGE(followed, followed.error().message);
        CHECK(followed->status == 200);
        CHECK(followed->body == "here");
        CHECK(followed->header("x-hop").empty()); // the final response's headers only
        // A signed storage request on the same pooled handle: not followed.
        request.follow_redirects = false;
        const auto kept = client.perform(request);
        REQUIRE_MESSAGE(kept, kept.error().message);
        CHECK(kept->status == 302);
        CHECK(kept->body == "moved");
    }

    SUBCASE("an upload is sent again on a fresh connection when a reused one died") {
        // Connection 0 answers one request, keeps the connection, then
        // reads the next request whole and closes without answering: curl
        // must rewind the body to send it on connection 1.
        std::mutex mutex;
        std::vector<std::string> bodies;
        LoopbackServer server([&](int fd, int n) {
            if (n == 0) {
                if (LoopbackServer::read_request(fd)) {
                    LoopbackServer::reply(fd, 200, "first");
                }
                LoopbackServer::read_request(fd);
                return;
            }
            if (const auto seen = LoopbackServer::read_request(fd)) {
                std::lock_guard lock(mutex);
                bodies.push_back(seen->body);
                LoopbackServer::reply(fd, 200, "second");
            }
        });
        HttpRequest first;
        first.url = server.url("/first");
        const auto r1 = client.perform(first);
        REQUIRE_MESSAGE(r1, r1.error().message);
        CHECK(r1->body == "first");

        testutil::TempDir dir;
        const std::string content = "a body streamed from a file range";
        testutil::write_file(dir / "body", "xx" + content + "yy");
        const int fd = ::open((dir / "body").c_str(), O_RDONLY | O_CLOEXEC);
        REQUIRE(fd >= 0);
        HttpRequest second;
        second.method = "PUT";
        second.url = server.url("/second");
        second.file = FileRange{fd, 2, content.size()};
        const auto r2 = client.perform(second);
        ::close(fd);
        REQUIRE_MESSAGE(r2, r2.error().message);
        CHECK(r2->body == "second");
        std::lock_guard lock(mutex);
        REQUIRE(bodies.size() == 1);
        CHECK(bodies[0] == content);
    }

    SUBCASE("a server that never answers is a timeout") {
        LoopbackServer server([&](int fd, int) {
            char c;
            while (::recv(fd, &c, 1, 0) > 0) {
            }
        });
        HttpRequest request;
        request.url = server.url("/");
        request.timeout = std::chrono::milliseconds(300);
        const auto started = std::chrono::steady_clock::now();
        const auto r = client.perform(request);
        REQUIRE_FALSE(r);
        CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(5));
        CHECK(r.error().message.find("timed out") != std::string::npos);
    }
}

TEST_SUITE_END();
