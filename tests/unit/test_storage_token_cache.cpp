// TokenCache: one fetch for many threads, and failures remembered.
#include "storage/token_cache.hpp"

#include <atomic>
#include <chrono>
#include <doctest/doctest.h>
#include <thread>
#include <vector>

using namespace nixery;
using namespace std::chrono_literals;

namespace {

// Runs `threads` callers of cache.token() at once; returns their results.
std::vector<Result<std::string>> concurrently(TokenCache& cache, int threads) {
    std::vector<Result<std::string>> out(threads, fail("not run"));
    std::vector<std::thread> running;
    for (int i = 0; i < threads; ++i) {
        running.emplace_back([&, i] { out[i] = cache.token(); });
    }
    for (auto& t : running) {
        t.join();
    }
    return out;
}

// A fetch that hands out "t1", "t2", … valid for `lifetime`, counting
// its calls in `fetches`, each taking `delay`.
TokenCache::Fetch numbered(std::atomic<int>& fetches, std::chrono::seconds lifetime,
                           std::chrono::milliseconds delay = 0ms) {
    return [&fetches, lifetime, delay]() -> Result<FetchedToken> {
        const int n = ++fetches;
        std::this_thread::sleep_for(delay);
        return FetchedToken{"t" + std::to_string(n), lifetime};
    };
}

} // namespace

TEST_SUITE_BEGIN("storage");

TEST_CASE("TokenCache") {
    std::atomic<int> fetches{0};

    SUBCASE("eight threads share one fetch") {
        // The others arrive while the first fetch takes its time.
        TokenCache cache(numbered(fetches, std::chrono::seconds(3600), 200ms));
        for (const auto& r : concurrently(cache, 8)) {
            REQUIRE(r);
            CHECK(*r == "t1");
        }
        CHECK(fetches == 1);
        CHECK(*cache.token() == "t1");
        CHECK(fetches == 1);
    }

    SUBCASE("a failed fetch is shared and remembered for a while") {
        TokenCache cache(
            [&]() -> Result<FetchedToken> {
                ++fetches;
                std::this_thread::sleep_for(200ms);
                return fail("get an access token from \"http://x/token\" failed: timed out");
            },
            500ms);
        for (const auto& r : concurrently(cache, 8)) {
            REQUIRE_FALSE(r);
            CHECK(r.error().message.find("timed out") != std::string::npos);
        }
        CHECK(fetches == 1);
        CHECK_FALSE(cache.token()); // remembered
        CHECK(fetches == 1);
        std::this_thread::sleep_for(600ms);
        CHECK_FALSE(cache.token()); // forgotten: asked again
        CHECK(fetches == 2);
    }

    SUBCASE("invalidating fetches anew, unless the token was already replaced") {
        TokenCache cache(numbered(fetches, std::chrono::seconds(3600)));
        CHECK(*cache.token() == "t1");
        cache.invalidate("t1");
        CHECK(*cache.token() == "t2");
        cache.invalidate("t1"); // a late refusal of the old one
        CHECK(*cache.token() == "t2");
        CHECK(fetches == 2);
    }

    SUBCASE("while the refresh fails, the current token serves until it expires") {
        // A 2 s token: refreshed after 1 s, used until 1.5 s.
        TokenCache cache(
            [&]() -> Result<FetchedToken> {
                if (++fetches == 1) {
                    return FetchedToken{"t1", std::chrono::seconds(2)};
                }
                return fail("get an access token failed: HTTP 503");
            },
            200ms);
        CHECK(*cache.token() == "t1");
        std::this_thread::sleep_for(1100ms);
        auto r = cache.token(); // the refresh fails
        REQUIRE(r);
        CHECK(*r == "t1");
        CHECK(fetches == 2);
        CHECK(*cache.token() == "t1"); // the failure is remembered: no fetch
        CHECK(fetches == 2);
        std::this_thread::sleep_for(500ms); // expired, failure forgotten
        r = cache.token();
        REQUIRE_FALSE(r);
        CHECK(r.error().message.find("HTTP 503") != std::string::npos);
        CHECK(fetches == 3);
    }

    SUBCASE("a short-lived token is refreshed halfway") {
        TokenCache cache(numbered(fetches, std::chrono::seconds(2)));
        CHECK(*cache.token() == "t1");
        std::this_thread::sleep_for(1100ms);
        CHECK(*cache.token() == "t2");
    }
    SUBCASE("a token's lifetime counts from when it was asked for, not from the answer") {
        // Valid 2 s from the request, answered after 1.1 s: already halfway.
        TokenCache cache(numbered(fetches, std::chrono::seconds(2), 1100ms));
        CHECK(*cache.token() == "t1");
        CHECK(*cache.token() == "t2");
    }
}

TEST_SUITE_END();
