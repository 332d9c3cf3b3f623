// The counters behind /metrics, shared by every process and thread of one
// `nixery serve`. The master maps them (MAP_SHARED | MAP_ANONYMOUS) before it
// forks its workers, so every worker adds to the same lock-free atomics and
// whichever worker answers a scrape reports the totals of the whole pool; the
// master counts worker restarts there too. Counting never fails, never blocks
// and never allocates. The rendering follows the Prometheus text exposition
// format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/).
// Counters start from zero when the master starts, as Prometheus expects of a
// restarted target.
#pragma once

#include "util/result.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace nixery {

enum class BuildOutcome { succeeded, failed };

class Metrics {
public:
    // Counters in memory that processes forked after this call share.
    static Result<Metrics> create_shared();
    Metrics(Metrics&& o) noexcept : m_counters(o.m_counters) { o.m_counters = nullptr; }
    Metrics& operator=(Metrics&&) = delete;
    Metrics(const Metrics&) = delete;
    ~Metrics();

    // A request answered with `status`, by its route's label (route_label()
    // in core/routes.hpp; another label counts as "not_found").
    void count_request(std::string_view route, int status);
    // One run of Nix for a manifest request (Builder), however it ended.
    void count_build(BuildOutcome outcome, double seconds);
    void count_layers(int packed, int reused, std::uint64_t bytes_packed);
    void count_worker_restart();

    // Every metric in the text exposition format.
    std::string render() const;

    // The Content-Type of render()'s text.
    static constexpr std::string_view k_content_type = "text/plain; version=0.0.4; charset=utf-8";

private:
    struct Counters;
    explicit Metrics(Counters* counters) : m_counters(counters) {}
    Counters* m_counters;
};

} // namespace nixery
