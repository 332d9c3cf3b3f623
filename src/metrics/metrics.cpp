#include "metrics/metrics.hpp"

#include "core/routes.hpp"
#include "util/files.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <new>
#include <sys/mman.h>

namespace nixery {

namespace {

constexpr int k_min_status = 100;
constexpr int k_statuses = 500; // 100…599; anything else counts as 599
constexpr int k_routes = static_cast<int>(RouteKind::not_found) + 1;

// Upper bounds (seconds) of the build duration histogram: from a build that
// only re-packs cached outputs to one near the longest NIX_TIMEOUT allows.
constexpr std::array<double, 11> k_duration_buckets{0.5, 1,   2.5, 5,   10,  30,
                                                    60,  120, 300, 600, 1800};

using Counter = std::atomic<std::uint64_t>;
// Cross-process atomics must not hide a lock inside the process.
static_assert(Counter::is_always_lock_free);

} // namespace

struct Metrics::Counters {
    Counter requests[k_routes][k_statuses];
    Counter builds;
    Counter build_failures;
    Counter duration_buckets[k_duration_buckets.size()]; // non-cumulative
    Counter duration_micros;
    Counter layers_packed;
    Counter layers_reused;
    Counter bytes_packed;
    Counter worker_restarts;
};

Result<Metrics> Metrics::create_shared() {
    void* memory = ::mmap(nullptr, sizeof(Counters), PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) {
        return fail("mmap of the shared metrics failed: " + errno_text(errno));
    }
    // The mapping is zero-filled; value-initialisation keeps it so.
    return Metrics(new (memory) Counters());
}

Metrics::~Metrics() {
    if (m_counters != nullptr) {
        m_counters->~Counters();
        ::munmap(m_counters, sizeof(Counters));
    }
}

void Metrics::count_request(std::string_view route, int status) {
    int r = 0;
    while (r + 1 < k_routes && route_label(static_cast<RouteKind>(r)) != route) {
        ++r; // the last, not_found, takes any other label
    }
    const int s = status < k_min_status || status >= k_min_status + k_statuses
                      ? k_min_status + k_statuses - 1
                      : status;
    m_counters->requests[r][s - k_min_status].fetch_add(1, std::memory_order_relaxed);
}

void Metrics::count_build(BuildOutcome outcome, double seconds) {
    auto& c = *m_counters;
    c.builds.fetch_add(1, std::memory_order_relaxed);
    if (outcome == BuildOutcome::failed) {
        c.build_failures.fetch_add(1, std::memory_order_relaxed);
    }
    std::size_t bucket = 0;
    while (bucket < k_duration_buckets.size() && seconds > k_duration_buckets[bucket]) {
        ++bucket;
    }
    if (bucket < k_duration_buckets.size()) {
        c.duration_buckets[bucket].fetch_add(1, std::memory_order_relaxed);
    }
    const auto micros = seconds > 0 ? static_cast<std::uint64_t>(seconds * 1e6) : 0;
    c.duration_micros.fetch_add(micros, std::memory_order_relaxed);
}

void Metrics::count_layers(int packed, int reused, std::uint64_t bytes_packed) {
    auto& c = *m_counters;
    c.layers_packed.fetch_add(static_cast<std::uint64_t>(packed), std::memory_order_relaxed);
    c.layers_reused.fetch_add(static_cast<std::uint64_t>(reused), std::memory_order_relaxed);
    c.bytes_packed.fetch_add(bytes_packed, std::memory_order_relaxed);
}

void Metrics::count_worker_restart() {
    m_counters->worker_restarts.fetch_add(1, std::memory_order_relaxed);
}

namespace {

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
    out.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void counter(std::string& out, std::string_view name, std::string_view help, const Counter& value) {
    header(out, name, "counter", help);
    out.append(name).append(" ").append(std::to_string(value.load())).append("\n");
}

std::string number(double value) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", value);
    return buf;
}

} // namespace

std::string Metrics::render() const {
    const auto& c = *m_counters;
    std::string out;
    header(out, "nixery_http_requests_total", "counter",
           "Requests the worker pool answered, by route and HTTP status.");
    for (int r = 0; r < k_routes; ++r) {
        for (int s = 0; s < k_statuses; ++s) {
            const auto n = c.requests[r][s].load();
            if (n == 0) {
                continue;
            }
            out.append("nixery_http_requests_total{route=\"")
                .append(route_label(static_cast<RouteKind>(r)))
                .append("\",status=\"")
                .append(std::to_string(k_min_status + s))
                .append("\"} ")
                .append(std::to_string(n))
                .append("\n");
        }
    }
    counter(out, "nixery_builds_total", "Image builds (Nix runs for a manifest request).",
            c.builds);
    counter(out, "nixery_build_failures_total",
            "Image builds that ended in an error (Nix failed, timed out, or a package is "
            "unknown).",
            c.build_failures);

    header(out, "nixery_build_duration_seconds", "histogram",
           "How long image builds took, failed ones included.");
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < k_duration_buckets.size(); ++i) {
        cumulative += c.duration_buckets[i].load();
        out.append("nixery_build_duration_seconds_bucket{le=\"")
            .append(number(k_duration_buckets[i]))
            .append("\"} ")
            .append(std::to_string(cumulative))
            .append("\n");
    }
    // Read once: the +Inf bucket and _count must agree.
    const auto builds = std::max(c.builds.load(), cumulative);
    out.append("nixery_build_duration_seconds_bucket{le=\"+Inf\"} ")
        .append(std::to_string(builds))
        .append("\n");
    out.append("nixery_build_duration_seconds_sum ")
        .append(number(static_cast<double>(c.duration_micros.load()) / 1e6))
        .append("\n");
    out.append("nixery_build_duration_seconds_count ").append(std::to_string(builds)).append("\n");

    counter(out, "nixery_layers_packed_total",
            "Layers packed (tar + gzip) by builds that succeeded.", c.layers_packed);
    counter(out, "nixery_layers_reused_total",
            "Layers builds that succeeded took from the cache instead of packing them.",
            c.layers_reused);
    counter(out, "nixery_layer_bytes_packed_total",
            "Compressed bytes of the layers builds that succeeded packed.", c.bytes_packed);
    counter(out, "nixery_worker_restarts_total",
            "Worker processes that exited and were replaced by the master.", c.worker_restarts);
    return out;
}

} // namespace nixery
