// One bearer token shared by every thread of a process, refreshed by one
// thread at a time: the others keep using the current token while it is
// still valid, or wait for the refresh and share its result; a token that
// still works also outlives a failed refresh. A failed
// refresh is remembered for a moment and handed to every caller in that
// time, so when the token endpoint is down the 8 threads of a worker make
// one attempt between them, not 8 × the retries. Owns no I/O: the fetch is
// the caller's.
#pragma once

#include "util/result.hpp"

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace nixery {

struct FetchedToken {
    std::string value;
    std::chrono::seconds lifetime{0};
};

class TokenCache {
public:
    using Fetch = std::function<Result<FetchedToken>()>;

    explicit TokenCache(Fetch fetch,
                        std::chrono::milliseconds failure_memory = std::chrono::seconds(5));

    // A token valid for a while yet, fetched when there is none (or it is
    // near its end); the fetch's error, or a remembered one, otherwise.
    // Thread-safe.
    Result<std::string> token();

    // The store refused `refused`: the next token() fetches anew, unless
    // another thread already replaced it.
    void invalidate(std::string_view refused);

private:
    using Clock = std::chrono::steady_clock;

    Fetch m_fetch;
    std::chrono::milliseconds m_failure_memory;
    std::mutex m_mutex;
    std::condition_variable m_fetched;
    bool m_fetching = false;
    std::string m_token;
    Clock::time_point m_refresh_at; // after this, one thread fetches anew
    Clock::time_point m_expires_at; // until this, the others keep using it
    std::optional<Error> m_failure;
    Clock::time_point m_failure_until;
};

} // namespace nixery
