#include "registry/start_page.hpp"

#include <doctest/doctest.h>

using namespace nixery;

namespace {

BuildRecord build(std::string image, std::optional<int> status, std::string error = {}) {
    BuildRecord b;
    b.image = std::move(image);
    b.tag = "latest";
    b.started_at = 1800000000.5; // 2027-01-15 08:00:00 UTC
    b.duration = 12.345;
    b.layers_built = 3;
    b.layers_reused = 7;
    b.status = status;
    b.error = std::move(error);
    return b;
}

} // namespace

TEST_SUITE_BEGIN("registry");

TEST_CASE("render_start_page") {
    StartPage page;
    page.source = "the package set at /srv/<pkgs>";
    SUBCASE("pull commands for the request's host, meta-packages, source") {
        page.host = "registry.example.com";
        const auto html = render_start_page(page);
        CHECK(html.find("docker pull registry.example.com/shell/hello") != std::string::npos);
        CHECK(html.find("tls-verify") == std::string::npos);
        CHECK(html.find("bashInteractive") != std::string::npos);
        CHECK(html.find("aarch64-linux") != std::string::npos);
        CHECK(html.find("the package set at /srv/&lt;pkgs&gt;") != std::string::npos);
        CHECK(html.find("Nothing built yet") != std::string::npos);
    }
    SUBCASE("plain HTTP: clients are told to skip TLS verification") {
        page.host = "127.0.0.1:8080";
        page.tls = false;
        const auto html = render_start_page(page);
        CHECK(html.find("podman pull --tls-verify=false 127.0.0.1:8080/figlet") !=
              std::string::npos);
    }
    SUBCASE("several platforms: each named, a client gets its own") {
        page.platforms = {"linux/amd64"};
        CHECK(render_start_page(page).find("Every image is built for") == std::string::npos);
        page.platforms = {"linux/amd64", "linux/arm64/v8"};
        const auto html = render_start_page(page);
        CHECK(html.find("Every image is built for <code>linux/amd64</code>, "
                        "<code>linux/arm64/v8</code>") != std::string::npos);
    }
    SUBCASE("build durations") {
        const std::vector<std::pair<double, std::string>> cases{
            {4.256, ">4.26 s<"},     {9.996, ">10 s<"},       {119.4, ">119 s<"},
            {119.6, ">2 min 00 s<"}, {179.7, ">3 min 00 s<"}, {3725.2, ">62 min 05 s<"}};
        for (const auto& [seconds, shown] : cases) {
            auto b = build("a", 200);
            b.duration = seconds;
            page.builds = {b};
            CHECK_MESSAGE(render_start_page(page).find(shown) != std::string::npos,
                          seconds << " s should show as " << shown);
        }
    }
    SUBCASE("no Host header: a placeholder") {
        CHECK(render_start_page(page).find("docker pull HOST/shell/hello") != std::string::npos);
    }
    SUBCASE("builds and errors; nothing a client or Nix wrote becomes markup") {
        page.host = "x\"><script>alert(1)</script>";
        page.builds = {build("shell/hello", 200), build("<b>odd</b>", std::nullopt)};
        page.errors = {build("broken", 404, "error: <img src=x onerror=alert(1)> & more")};
        const auto html = render_start_page(page);
        CHECK(html.find("<script") == std::string::npos);
        CHECK(html.find("<img") == std::string::npos);
        CHECK(html.find("<b>odd") == std::string::npos);
        CHECK(html.find("x&quot;&gt;&lt;script&gt;") != std::string::npos);
        CHECK(html.find("error: &lt;img src=x onerror=alert(1)&gt; &amp; more") !=
              std::string::npos);
        CHECK(html.find("<td>2027-01-15 08:00:00</td><td>12 s</td><td class=\"n\">3</td>"
                        "<td class=\"n\">7</td><td>built</td>") != std::string::npos);
        CHECK(html.find("<td>building</td>") != std::string::npos);
        CHECK(html.find("failed (404)") != std::string::npos);
    }
    SUBCASE("the current revision of the package set, escaped") {
        CHECK(render_start_page(page).find("Current revision: not known yet") != std::string::npos);
        // A channel's tags select nothing (ChannelSource::resolve): only git's do.
        CHECK(render_start_page(page).find("a git repository: a branch, tag or commit") !=
              std::string::npos);
        page.revision = {"git", "https://example.com/p.git", {}, std::string(40, 'a'), {}};
        page.revision_recorded_at = 1800000000;
        auto html = render_start_page(page);
        CHECK(html.find("Current revision: <code>" + std::string(40, 'a') + "</code>") !=
              std::string::npos);
        CHECK(html.find("2027-01-15 08:00:00") != std::string::npos);
        page.revision = {"path", "/srv/p", {}, {}, "sha256-<b>"};
        html = render_start_page(page);
        CHECK(html.find("content hash <code>sha256-&lt;b&gt;</code>") != std::string::npos);
    }
    SUBCASE("an unreadable history says so") {
        page.history_unavailable = true;
        CHECK(render_start_page(page).find("cannot be read") != std::string::npos);
    }
    SUBCASE("minimal: instructions only, no builds or errors of others") {
        page.minimal = true;
        page.builds.push_back(build("secret-project/hello", 200));
        page.errors.push_back(build("other/thing", 404, "no such package"));
        const auto html = render_start_page(page);
        CHECK(html.find("docker pull") != std::string::npos);
        CHECK(html.find("secret-project") == std::string::npos);
        CHECK(html.find("no such package") == std::string::npos);
        CHECK(html.find("Recent build") == std::string::npos);
    }
}

TEST_SUITE_END();
