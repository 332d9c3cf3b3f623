// perform_with_retries: the time budget of a whole call.
#include "http/retry.hpp"
#include "loopback_server.hpp"

#include <chrono>
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <thread>

using namespace nixery;
using testutil::LoopbackServer;
using Clock = std::chrono::steady_clock;

namespace {

// Accepts, reads whatever comes, never answers.
void never_answer(int fd, int) {
    char c;
    while (::recv(fd, &c, 1, 0) > 0) {
    }
}

// A GET of `url` under `policy`, each attempt with `timeout`; counts the
// requests built in `attempts`.
Result<HttpResponse> call(HttpClient& client, const std::string& url, const RetryPolicy& policy,
                          int& attempts,
                          std::chrono::milliseconds timeout = HttpRequest{}.timeout) {
    return perform_with_retries(
        client,
        [&]() -> Result<HttpRequest> {
            ++attempts;
            HttpRequest request;
            request.url = url;
            request.timeout = timeout;
            return request;
        },
        policy);
}

} // namespace

TEST_SUITE_BEGIN("http");

TEST_CASE("perform_with_retries") {
    HttpClient client;

    SUBCASE("a store that never answers fails the call within the budget") {
        LoopbackServer server(never_answer);
        RetryPolicy policy;
        policy.budget = std::chrono::milliseconds(800);
        int attempts = 0;
        const auto started = Clock::now();
        // Each attempt alone could take 30 s; four of them, two minutes.
        const auto r = call(client, server.url("/"), policy, attempts);
        const auto took = Clock::now() - started;
        REQUIRE_FALSE(r);
        CHECK(took < std::chrono::seconds(3));
        CHECK(attempts == 1);
        CHECK(r.error().message.find("timed out") != std::string::npos);
    }

    SUBCASE("no budget leaves the request's own timeout") {
        LoopbackServer server(never_answer);
        RetryPolicy policy;
        policy.attempts = 2;
        policy.budget = std::chrono::milliseconds(0);
        int attempts = 0;
        const auto r =
            call(client, server.url("/"), policy, attempts, std::chrono::milliseconds(200));
        REQUIRE_FALSE(r);
        CHECK(attempts == 2);
    }

    SUBCASE("server errors are retried while the budget lasts") {
        LoopbackServer server([](int fd, int) {
            while (LoopbackServer::read_request(fd)) {
                LoopbackServer::reply(fd, 503, "busy");
            }
        });
        int attempts = 0;
        const auto r = call(client, server.url("/"), RetryPolicy{}, attempts);
        REQUIRE(r);
        CHECK(r->status == 503);
        CHECK(attempts == 4);
    }

    SUBCASE("a response the policy also retries is tried again") {
        // As S3's 200 to CompleteMultipartUpload that reports an error.
        int answered = 0;
        LoopbackServer server([&](int fd, int) {
            while (LoopbackServer::read_request(fd)) {
                LoopbackServer::reply(fd, 200, ++answered < 3 ? "<Error/>" : "done");
            }
        });
        RetryPolicy policy;
        policy.retry_also = [](const HttpResponse& r) { return r.body == "<Error/>"; };
        int attempts = 0;
        const auto r = call(client, server.url("/"), policy, attempts);
        REQUIRE(r);
        CHECK(r->body == "done");
        CHECK(attempts == 3);
        policy.attempts = 2; // and the last answer when the attempts run out
        answered = 0;
        attempts = 0;
        const auto last = call(client, server.url("/"), policy, attempts);
        REQUIRE(last);
        CHECK(last->body == "<Error/>");
        CHECK(attempts == 2);
    }

    SUBCASE("a transfer takes as long as it needs; anything else gets the budget") {
        LoopbackServer server([](int fd, int) {
            std::this_thread::sleep_for(std::chrono::milliseconds(400)); // a slow link
            while (LoopbackServer::read_request(fd)) {
                LoopbackServer::reply(fd, 200, "stored");
            }
        });
        RetryPolicy policy;
        policy.attempts = 1;
        policy.budget = std::chrono::milliseconds(100);
        const auto put = [&](std::size_t size) {
            return perform_with_retries(
                client,
                [&]() -> Result<HttpRequest> {
                    HttpRequest request;
                    request.method = "PUT";
                    request.url = server.url("/object");
                    request.body = std::string(size, 'x');
                    return request;
                },
                policy);
        };
        // Each on a new connection, which the server answers after 400 ms.
        const auto small = put(1024);
        REQUIRE_FALSE(small);
        CHECK(small.error().message.find("timed out") != std::string::npos);
        const auto large = put(2 << 20);
        REQUIRE_MESSAGE(large, (large ? "" : large.error().message));
        CHECK(large->body == "stored");
    }

    SUBCASE("a streamed response goes to on_data; one cut short is not taken twice") {
        LoopbackServer server([](int fd, int n) {
            while (LoopbackServer::read_request(fd)) {
                if (n == 0) {
                    LoopbackServer::reply(fd, 404, "no such object");
                } else if (n == 1) {
                    LoopbackServer::reply(fd, 200, "the whole object");
                } else {
                    // Promises 1000 bytes, sends 10 and hangs up.
                    LoopbackServer::write_text(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n"
                                                   "\r\n0123456789");
                    return;
                }
                return; // one request per connection
            }
        });
        const auto get = [&](int& attempts, std::string& taken) {
            return perform_with_retries(client, [&]() -> Result<HttpRequest> {
                ++attempts;
                HttpRequest request;
                request.url = server.url("/object");
                request.on_data = [&](std::string_view piece) {
                    taken += piece;
                    return true;
                };
                return request;
            });
        };
        int attempts = 0;
        std::string taken;
        const auto missing = get(attempts, taken);
        REQUIRE(missing);
        CHECK(missing->status == 404);
        CHECK(missing->body == "no such object"); // kept for the error message
        CHECK(taken.empty());
        const auto whole = get(attempts, taken);
        REQUIRE(whole);
        CHECK(whole->status == 200);
        CHECK(whole->body.empty());
        CHECK(taken == "the whole object");
        attempts = 0;
        taken.clear();
        const auto cut = get(attempts, taken);
        REQUIRE_FALSE(cut);
        CHECK(attempts == 1);
        CHECK(taken == "0123456789");
    }

    SUBCASE("a request that took the whole budget to build is not sent") {
        RetryPolicy policy;
        policy.budget = std::chrono::milliseconds(50);
        const auto r = perform_with_retries(
            client,
            [&]() -> Result<HttpRequest> {
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
                HttpRequest request;
                request.url = "http://127.0.0.1:9/";
                return request;
            },
            policy);
        REQUIRE_FALSE(r);
        CHECK(r.error().message == "the time budget of 50 ms ran out before the request was sent");
    }
}

TEST_CASE("retry_after") {
    HttpResponse r;
    r.status = 429;
    r.headers = {{"retry-after", " 7 "}};
    CHECK(retry_after(r) == std::chrono::seconds(7));
    r.status = 503;
    CHECK(retry_after(r) == std::chrono::seconds(7));
    r.status = 500; // only where it means "come back later"
    CHECK_FALSE(retry_after(r));
    r.status = 429;
    r.headers = {{"retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"}};
    CHECK_FALSE(retry_after(r));
    r.headers = {{"retry-after", "99999999999999"}};
    CHECK_FALSE(retry_after(r));
    r.headers = {};
    CHECK_FALSE(retry_after(r));
}

TEST_CASE("backoff_delay") {
    const RetryPolicy p{5, std::chrono::milliseconds(100), std::chrono::milliseconds(1000)};
    CHECK(backoff_delay(p, 1, 1.0).count() == 100);
    CHECK(backoff_delay(p, 2, 1.0).count() == 200);
    CHECK(backoff_delay(p, 3, 0.0).count() == 200); // jitter: half of 400 at least
    CHECK(backoff_delay(p, 9, 1.0).count() == 1000);
    CHECK(is_retryable_status(503));
    CHECK(is_retryable_status(429));
    CHECK_FALSE(is_retryable_status(404));
}

TEST_SUITE_END();
