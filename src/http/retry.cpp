#include "http/retry.hpp"

#include <algorithm>
#include <thread>

namespace nixery {

bool is_retryable_status(long status) {
    return status == 408 || status == 429 || status >= 500;
}

std::chrono::milliseconds backoff_delay(const RetryPolicy& policy, int attempt, double jitter) {
    auto delay = policy.first_delay;
    for (int i = 1; i < attempt && delay < policy.max_delay; ++i) {
        delay *= 2;
    }
    delay = std::min(delay, policy.max_delay);
    return std::chrono::milliseconds(
        static_cast<std::int64_t>(static_cast<double>(delay.count()) * (0.5 + jitter / 2)));
}

Result<HttpResponse> perform_with_retries(HttpClient& client,
                                          const std::function<Result<HttpRequest>()>& make,
                                          const RetryPolicy& policy) {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    std::uniform_real_distribution<double> jitter(0.0, 1.0);
    for (int attempt = 0;; ++attempt) {
        if (attempt > 0) {
            std::this_thread::sleep_for(backoff_delay(policy, attempt, jitter(rng)));
        }
        TRY_ASSIGN(const auto request, make());
        auto response = client.perform(request);
        const bool last = attempt + 1 >= policy.attempts;
        if (last || (response && !is_retryable_status(response->status))) {
            return response;
        }
    }
}

} // namespace nixery
