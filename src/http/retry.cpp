#include "http/retry.hpp"

#include "util/text.hpp"

#include <algorithm>
#include <optional>
#include <thread>

namespace nixery {

namespace {

using Clock = std::chrono::steady_clock;

std::string duration_text(std::chrono::milliseconds d) {
    return d.count() % 1000 == 0 ? std::to_string(d.count() / 1000) + " s"
                                 : std::to_string(d.count()) + " ms";
}

} // namespace

bool is_transfer(const HttpRequest& request) {
    return request.file.has_value() || request.body.size() > (1 << 20) ||
           static_cast<bool>(request.on_data);
}

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

std::optional<std::chrono::seconds> retry_after(const HttpResponse& response) {
    if (response.status != 429 && response.status != 503) {
        return std::nullopt;
    }
    for (const auto& [name, value] : response.headers) {
        if (name != "retry-after") {
            continue;
        }
        const auto text = trim_blanks(value);
        if (text.empty() || text.size() > 9 ||
            text.find_first_not_of("0123456789") != std::string_view::npos) {
            return std::nullopt;
        }
        return std::chrono::seconds(std::stol(std::string(text)));
    }
    return std::nullopt;
}

Result<HttpResponse> perform_with_retries(HttpClient& client,
                                          const std::function<Result<HttpRequest>()>& make,
                                          const RetryPolicy& policy) {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    std::uniform_real_distribution<double> jitter(0.0, 1.0);
    const bool bounded = policy.budget.count() > 0;
    const auto deadline = Clock::now() + policy.budget;
    const auto left = [&] {
        return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    };
    std::optional<Result<HttpResponse>> last;
    bool transfer = false;
    for (int attempt = 0;; ++attempt) {
        if (attempt > 0) {
            auto delay = backoff_delay(policy, attempt, jitter(rng));
            if (const auto asked = *last ? retry_after(**last) : std::nullopt) {
                delay =
                    std::max(delay, std::min<std::chrono::milliseconds>(*asked, policy.max_delay));
            }
            if (bounded && !transfer && left() <= delay) {
                return std::move(*last); // no time for another attempt
            }
            std::this_thread::sleep_for(delay);
        }
        TRY_ASSIGN(auto request, make());
        transfer = is_transfer(request);
        if (transfer) {
            request.timeout = std::chrono::milliseconds(0);
        } else if (bounded) {
            // Building the request may have waited (for a token, say).
            const auto remaining = left();
            if (remaining.count() <= 0) {
                return last ? std::move(*last)
                            : fail("the time budget of " + duration_text(policy.budget) +
                                   " ran out before the request was sent");
            }
            if (request.timeout.count() == 0 || request.timeout > remaining) {
                request.timeout = remaining;
            }
        }
        bool streamed = false;
        if (request.on_data) {
            request.on_data = [&streamed, take = std::move(request.on_data)](std::string_view p) {
                streamed = true;
                return take(p);
            };
        }
        auto response = client.perform(request);
        const bool done = streamed || attempt + 1 >= policy.attempts ||
                          (response && !is_retryable_status(response->status) &&
                           !(policy.retry_also && policy.retry_also(*response)));
        if (done) {
            return response;
        }
        last = std::move(response);
    }
}

} // namespace nixery
