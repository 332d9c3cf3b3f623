#include "storage/token_cache.hpp"

#include <algorithm>

namespace nixery {

TokenCache::TokenCache(Fetch fetch, std::chrono::milliseconds failure_memory)
    : m_fetch(std::move(fetch)), m_failure_memory(failure_memory) {}

Result<std::string> TokenCache::token() {
    std::unique_lock lock(m_mutex);
    for (;;) {
        const auto now = Clock::now();
        if (!m_token.empty() && now < m_refresh_at) {
            return m_token;
        }
        if (m_fetching) {
            // Another thread refreshes: an old token that still works will
            // do meanwhile; without one, wait for the outcome and share it.
            if (!m_token.empty() && now < m_expires_at) {
                return m_token;
            }
            m_fetched.wait(lock, [&] { return !m_fetching; });
            continue;
        }
        if (m_failure && now < m_failure_until) {
            return unexpected(*m_failure);
        }
        break;
    }
    m_fetching = true;
    lock.unlock();
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
        return unexpected(fresh.error());
    }
    // Refresh five minutes before the end (or halfway through a
    // short-lived token), so a request never carries one about to expire.
    const auto margin =
        std::min<std::chrono::seconds>(std::chrono::minutes(5), fresh->lifetime / 2);
    m_failure.reset();
    m_token = fresh->value;
    m_expires_at = now + fresh->lifetime - std::chrono::seconds(10);
    m_refresh_at = now + fresh->lifetime - margin;
    return m_token;
}

void TokenCache::invalidate(std::string_view refused) {
    std::lock_guard lock(m_mutex);
    if (m_token == refused) {
        m_token.clear();
    }
}

} // namespace nixery
