// Retrying object-store requests with exponential backoff and jitter
// (cloud.google.com/storage/docs/retry-strategy; AWS does the same): on
// transport errors, 408, 429 and 5xx. Each attempt builds its request
// anew, since signatures and tokens carry the time.
#pragma once

#include "http/client.hpp"

#include <chrono>
#include <functional>
#include <random>

namespace nixery {

struct RetryPolicy {
    int attempts = 4; // in all, the first one included
    std::chrono::milliseconds first_delay{100};
    std::chrono::milliseconds max_delay{2000};
};

bool is_retryable_status(long status);

// The pause before attempt `attempt` (1 = the first retry): the policy's
// exponential delay scaled by `jitter` in [0, 1) to somewhere between half
// and all of it. Pure.
std::chrono::milliseconds backoff_delay(const RetryPolicy& policy, int attempt, double jitter);

// Performs the request `make` builds until it gets a response that is not
// retryable or the attempts run out. Returns the last response (which may
// still be a 5xx: the caller words the error) or the last transport error.
Result<HttpResponse> perform_with_retries(HttpClient& client,
                                          const std::function<Result<HttpRequest>()>& make,
                                          const RetryPolicy& policy = {});

} // namespace nixery
