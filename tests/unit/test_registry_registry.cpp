#include "registry/registry.hpp"

#include <doctest/doctest.h>

#include <algorithm>

using namespace nixery;

TEST_SUITE_BEGIN("registry");

namespace {

const log::Value* field(const Response& r, std::string_view key) {
    const auto it = std::find_if(r.log_fields.begin(), r.log_fields.end(),
                                 [&](const log::Field& f) { return f.key == key; });
    return it == r.log_fields.end() ? nullptr : &it->value;
}

std::string text_field(const Response& r, std::string_view key) {
    const auto* v = field(r, key);
    return v != nullptr && std::holds_alternative<std::string>(*v) ? std::get<std::string>(*v)
                                                                   : std::string();
}

std::string header(const Response& r, std::string_view name) {
    for (const auto& [n, v] : r.headers) {
        if (n == name) {
            return v;
        }
    }
    return {};
}

} // namespace

TEST_CASE("failure_response") {
    Config config;
    config.state_dir = "/var/lib/nixery-state";
    const Disclosure disclosure(config);
    const log::RequestScope scope("0123456789abcdef");

    SUBCASE("a fault: 500 with the request id, the internal text only in the log line") {
        const auto f =
            fault("building \"x\" failed on the server: No space left on device",
                  "write \"/var/lib/nixery-state/x.tmp\" failed: No space left on device");
        const auto r = failure_response(disclosure, f);
        CHECK(r.status == 500);
        CHECK(r.body.find("INTERNAL_ERROR") != std::string::npos);
        CHECK(r.body.find("request id 0123456789abcdef") != std::string::npos);
        CHECK(r.body.find("/var/lib") == std::string::npos);
        CHECK(text_field(r, "cause") == f.internal);
        CHECK(text_field(r, "failure") == "server fault");
        CHECK(r.log_level == log::Level::error);
    }
    SUBCASE("an unreachable source: 503 with Retry-After, an error in the log") {
        const auto r =
            failure_response(disclosure, source_unavailable("git repository x", "timed out"));
        CHECK(r.status == 503);
        CHECK(header(r, "Retry-After") == "10");
        CHECK(r.log_level == log::Level::error);
        CHECK(text_field(r, "failure") == "package source unavailable");
    }
    SUBCASE("a fetch under way: its own Retry-After, routine in the log") {
        const auto r = failure_response(disclosure, busy("being fetched; retry later", 30));
        CHECK(r.status == 503);
        CHECK(header(r, "Retry-After") == "30");
        CHECK(r.log_level == log::Level::info);
    }
    SUBCASE("a remembered fault was logged by its build: routine here") {
        auto f = fault("building \"x\" failed on the server", {});
        f.remembered = true;
        const auto r = failure_response(disclosure, f);
        CHECK(r.status == 500);
        CHECK(r.log_level == log::Level::info);
        CHECK(field(r, "remembered") != nullptr);
    }
    SUBCASE("a user's mistake: 404 with its detail, routine in the log") {
        const auto r = failure_response(disclosure, unknown("no tag \"v9\"", "\"v9\""));
        CHECK(r.status == 404);
        CHECK(r.body.find("MANIFEST_UNKNOWN") != std::string::npos);
        CHECK(r.body.find("\"detail\":\"v9\"") != std::string::npos);
        CHECK(r.log_level == log::Level::info);
    }
}

TEST_SUITE_END();
