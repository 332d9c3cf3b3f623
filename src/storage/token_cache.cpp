#include "storage/token_cache.hpp"

#include <algorithm>

namespace nixery {

using namespace std::chrono_literals;

TokenCache::TokenCache(Fetch fetch, std::chrono::milliseconds failure_memory)
    : m_fetch(std::move(fetch)), m_failure_memory(failure_memory) {}

Result<std::string> TokenCache::token() {
    std::unique_lock lock(m_mutex);
    // A token past its refresh time still works until it expires: while a
    // refresh runs, or after one failed, callers keep using it.
    const auto still_valid = [&](Clock::time_point now) {
        return !m_token.empty() && now < m_expires_at;
    };
    for (;;) {
        const auto now = Clock::now();
        if (!m_token.empty() && now < m_refresh_at) {
            return m_token;
        }
        if (m_fetching) {
            // Without a valid token, wait for the refresh and share it.
            if (still_valid(now)) {
                return m_token;
            }
            m_fetched.wait(lock, [&] { return !m_fetching; });
            continue;
        }
        if (m_failure && now < m_failure_until) {
            if (still_valid(now)) {
                return m_token;
            }
            return unexpected(*m_failure);
        }
        break;
    }
    m_fetching = true;
    lock.unlock();
    // The token's lifetime runs from the request: the answer may come late.
    const auto asked = Clock::now();
    Result<FetchedToken> fresh = fail("the token fetch threw");
    try {
        fresh = m_fetch();
    } catch (...) {
        // Keep the waiting threads from waiting forever; the caller's
        // catch-all reports the exception.
        lock.lock();
        m_fetching = false;
        m_fetched.notify_all();
        throw;
    }
    lock.lock();
    m_fetching = false;
    m_fetched.notify_all();
    const auto now = Clock::now();
    if (!fresh) {
        m_failure = fresh.error();
        m_failure_until = now + m_failure_memory;
        if (still_valid(now)) {
            return m_token;
        }
        return unexpected(fresh.error());
    }
    // Refresh five minutes before the end (or halfway through a
    // short-lived token), and stop using it ten seconds before (or at three
    // quarters), so a request never carries one about to expire.
    const auto lifetime = std::chrono::duration_cast<std::chrono::milliseconds>(fresh->lifetime);
    m_failure.reset();
    m_token = fresh->value;
    m_expires_at = asked + lifetime - std::min<std::chrono::milliseconds>(10s, lifetime / 4);
    m_refresh_at = asked + lifetime - std::min<std::chrono::milliseconds>(5min, lifetime / 2);
    return m_token;
}

void TokenCache::invalidate(std::string_view refused) {
    std::lock_guard lock(m_mutex);
    if (m_token == refused) {
        m_token.clear();
    }
}

} // namespace nixery
