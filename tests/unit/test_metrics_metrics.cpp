#include "metrics/metrics.hpp"

#include "core/routes.hpp"

#include <doctest/doctest.h>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace nixery;

namespace {

bool has_line(const std::string& text, const std::string& line) {
    return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

} // namespace

TEST_SUITE_BEGIN("metrics");

TEST_CASE("Metrics: counters shared by forked processes and threads") {
    auto metrics = Metrics::create_shared();
    REQUIRE(metrics);
    SUBCASE("processes and threads add to the same counters") {
        std::vector<pid_t> children;
        for (int p = 0; p < 3; ++p) {
            const pid_t pid = fork();
            if (pid == 0) {
                std::vector<std::thread> threads;
                for (int t = 0; t < 4; ++t) {
                    threads.emplace_back([&] {
                        for (int i = 0; i < 1000; ++i) {
                            metrics->count_request(route_label(RouteKind::manifest), 200);
                        }
                    });
                }
                for (auto& t : threads) {
                    t.join();
                }
                _exit(0);
            }
            children.push_back(pid);
        }
        for (const auto pid : children) {
            int status = 0;
            waitpid(pid, &status, 0);
            CHECK(WIFEXITED(status));
        }
        metrics->count_worker_restart();
        const auto text = metrics->render();
        CHECK(
            has_line(text, "nixery_http_requests_total{route=\"manifest\",status=\"200\"} 12000"));
        CHECK(has_line(text, "nixery_worker_restarts_total 1"));
    }
    SUBCASE("the text exposition format") {
        metrics->count_request(route_label(RouteKind::blob), 404);
        metrics->count_request(route_label(RouteKind::start_page), 42); // out of range: 599
        metrics->count_build(BuildOutcome::succeeded, 0.75);
        metrics->count_build(BuildOutcome::failed, 45);
        metrics->count_layers(3, 2, 4096);
        const auto text = metrics->render();
        CHECK(has_line(text, "# TYPE nixery_http_requests_total counter"));
        CHECK(has_line(text, "nixery_http_requests_total{route=\"blob\",status=\"404\"} 1"));
        CHECK(has_line(text, "nixery_http_requests_total{route=\"start_page\",status=\"599\"} 1"));
        CHECK(text.find("status=\"200\"") == std::string::npos); // zero series are left out
        CHECK(has_line(text, "nixery_builds_total 2"));
        CHECK(has_line(text, "nixery_build_failures_total 1"));
        CHECK(has_line(text, "# TYPE nixery_build_duration_seconds histogram"));
        CHECK(has_line(text, "nixery_build_duration_seconds_bucket{le=\"0.5\"} 0"));
        CHECK(has_line(text, "nixery_build_duration_seconds_bucket{le=\"1\"} 1"));
        CHECK(has_line(text, "nixery_build_duration_seconds_bucket{le=\"30\"} 1"));
        CHECK(has_line(text, "nixery_build_duration_seconds_bucket{le=\"60\"} 2"));
        CHECK(has_line(text, "nixery_build_duration_seconds_bucket{le=\"+Inf\"} 2"));
        CHECK(has_line(text, "nixery_build_duration_seconds_sum 45.75"));
        CHECK(has_line(text, "nixery_build_duration_seconds_count 2"));
        CHECK(has_line(text, "nixery_layers_packed_total 3"));
        CHECK(has_line(text, "nixery_layers_reused_total 2"));
        CHECK(has_line(text, "nixery_layer_bytes_packed_total 4096"));
        CHECK(text.back() == '\n');
    }
}

TEST_SUITE_END();
