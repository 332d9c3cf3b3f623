// Retrying object-store requests with exponential backoff and jitter
// (cloud.google.com/storage/docs/retry-strategy; AWS does the same): on
// transport errors, 408, 429 and 5xx, within a time budget for the whole
// call. Each attempt builds its request anew, since signatures and tokens
// carry the time.
#pragma once

#include "http/client.hpp"

#include <chrono>
#include <functional>
#include <optional>
#include <random>

namespace nixery {

// What one storage call may take by default, retries and pauses included.
inline constexpr std::chrono::milliseconds k_default_retry_budget{30000};

struct RetryPolicy {
    int attempts = 4; // in all, the first one included
    std::chrono::milliseconds first_delay{100};
    std::chrono::milliseconds max_delay{2000};
    // Every attempt and pause together: an attempt gets at most what is
    // left and none starts once it has run out, so a store that accepts
    // connections and never answers fails the call in this time rather
    // than in attempts × the request's timeout. Zero: no total. Transfers
    // (is_transfer) are never bounded by it.
    std::chrono::milliseconds budget = k_default_retry_budget;
    // A response to retry although its status is not one to retry (S3's
    // 200 that reports an error in its body); none when empty.
    std::function<bool(const HttpResponse&)> retry_also = nullptr;
};

bool is_retryable_status(long status);

// A request whose body comes from a file or is larger than 1 MiB, or whose
// response is streamed (on_data): it takes
// as long as the link needs, so neither the budget nor a total timeout
// applies to it; the client's low-speed limit stops an attempt that stalls.
bool is_transfer(const HttpRequest& request);

// The pause before attempt `attempt` (1 = the first retry): the policy's
// exponential delay scaled by `jitter` in [0, 1) to somewhere between half
// and all of it. Pure.
std::chrono::milliseconds backoff_delay(const RetryPolicy& policy, int attempt, double jitter);

// The pause a 429 or 503 response asks for in seconds (`Retry-After: 5`);
// nullopt when it asks for none, or gives a date. Pure.
std::optional<std::chrono::seconds> retry_after(const HttpResponse& response);

// Performs the request `make` builds until it gets a response that is not
// retryable, the attempts run out or the budget does. A pause is at least
// what the last response's Retry-After asks, up to the policy's max_delay. Returns the last
// response (which may still be a 5xx: the caller words the error) or the
// last transport error; an error of `make` is returned at once. A request
// whose on_data took part of a response is not retried: it would take the
// same bytes again.
Result<HttpResponse> perform_with_retries(HttpClient& client,
                                          const std::function<Result<HttpRequest>()>& make,
                                          const RetryPolicy& policy = {});

} // namespace nixery
