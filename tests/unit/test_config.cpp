#include "config.hpp"
#include "nginx/render.hpp"

#include <doctest/doctest.h>

using namespace nixery;

namespace {

Environment base() {
    return {{"STORAGE_PATH", "/tmp/s"}, {"NIXERY_STATE_DIR", "/tmp/st"}};
}

std::string error_of(Environment env) {
    auto c = load_config(env);
    return c ? std::string() : c.error().message;
}

} // namespace

TEST_CASE("load_config") {
    SUBCASE("defaults: the demo package set, filesystem storage") {
        auto c = load_config(base());
        REQUIRE_MESSAGE(c, error_of(base()));
        CHECK(c->demo_source);
        CHECK(c->storage == StorageKind::filesystem);
        CHECK(c->nix_timeout == std::chrono::seconds(60));
        CHECK(c->port == 8080);
        CHECK(c->storage_path == "/tmp/s");
        CHECK(c->gc_keep_days == 30);
    }
    SUBCASE("a git URL's credentials are not part of its description") {
        auto env = base();
        env["NIXERY_PKGS_REPO"] = "https://ci:glpat-secret@git.example.com/pkgs.git";
        auto c = load_config(env);
        REQUIRE(c);
        CHECK(c->describe_source() == "the git repository https://git.example.com/pkgs.git");
        CHECK(c->source_location == env["NIXERY_PKGS_REPO"]); // git still gets them
    }
    SUBCASE("the start page: full or minimal; a local package set's path is not shown") {
        auto env = base();
        CHECK(load_config(env)->start_page == StartPageKind::full);
        CHECK(load_config(env)->describe_source() == "the demo package set");
        env["NIXERY_START_PAGE"] = "minimal";
        CHECK(load_config(env)->start_page == StartPageKind::minimal);
        env["NIXERY_START_PAGE"] = "none";
        CHECK(error_of(env).find("NIXERY_START_PAGE") == 0);
    }
    SUBCASE("gc retention") {
        auto env = base();
        env["NIXERY_GC_KEEP_DAYS"] = "7";
        CHECK(load_config(env)->gc_keep_days == 7);
        env["NIXERY_GC_KEEP_DAYS"] = "a week";
        CHECK(error_of(env).find("NIXERY_GC_KEEP_DAYS") == 0);
    }
    SUBCASE("exactly one source") {
        auto env = base();
        env["NIXERY_CHANNEL"] = "nixos-unstable";
        env["NIXERY_PKGS_REPO"] = "https://example.com/pkgs.git";
        const auto msg = error_of(env);
        CHECK(msg.find("NIXERY_CHANNEL") != std::string::npos);
        CHECK(msg.find("NIXERY_PKGS_REPO") != std::string::npos);
        CHECK(msg.find("NIXERY_PKGS_PATH") != std::string::npos);
    }
    SUBCASE("unknown and contradictory settings") {
        auto env = base();
        env["NIXERY_WORKER"] = "3";
        CHECK(error_of(env).find("unknown setting NIXERY_WORKER") == 0);
        env = base();
        env["NIX_TIMEOUT"] = "0";
        CHECK(error_of(env).find("NIX_TIMEOUT") != std::string::npos);
        env = base();
        env["S3_BUCKET"] = "b";
        CHECK(error_of(env).find("S3_BUCKET is set") == 0);
        env = base();
        env["NIXERY_STORAGE_BACKEND"] = "gcs";
        env["GCS_BUCKET"] = "b";
        CHECK(error_of(env).find("STORAGE_PATH is set") == 0);
        env = base();
        env.erase("STORAGE_PATH");
        CHECK(error_of(env) == "STORAGE_PATH is not set");
        env = base();
        env.erase("STORAGE_PATH");
        env["NIXERY_STORAGE_BACKEND"] = "gcs";
        env["GCS_BUCKET"] = "b";
        env["GCS_ENDPOINT"] = "http://127.0.0.1:1";
        env["STORAGE_EMULATOR_HOST"] = "127.0.0.1:2";
        CHECK(error_of(env).find("STORAGE_EMULATOR_HOST and GCS_ENDPOINT are both set") == 0);
    }
}

TEST_CASE("render_production_nginx_config") {
    auto config = load_config(base());
    REQUIRE(config);
    ProductionSite site;
    site.server_name = "registry.example.com";
    site.certificate = "/etc/ssl/r.pem";
    const auto text = render_production_nginx_config(*config, site);
    REQUIRE_MESSAGE(text, (text ? "" : text.error().message));
    CHECK(text->find("listen 443 ssl http2;") != std::string::npos);
    CHECK(text->find("listen 80;") != std::string::npos);
    CHECK(text->find("server_name registry.example.com;") != std::string::npos);
    CHECK(text->find("ssl_certificate     /etc/ssl/r.pem;") != std::string::npos);
    CHECK(text->find("ssl_certificate_key /etc/nixery/tls/privkey.pem;") != std::string::npos);
    // The shared locations, inlined, with this instance's paths.
    CHECK(text->find("    fastcgi_pass unix:/run/nixery/fcgi.sock;") != std::string::npos);
    CHECK(text->find("    alias /tmp/s/;") != std::string::npos);
    CHECK(text->find("fastcgi_read_timeout 960s;") != std::string::npos);
    CHECK(text->find("location = /metrics") != std::string::npos);
    CHECK(text->find('@' + std::string("SOCKET@")) == std::string::npos);

    SUBCASE("nginx 1.13 and newer by default: no kTLS, HTTP/2 in listen") {
        CHECK(text->find("ssl_conf_command") == std::string::npos);
        CHECK(text->find("\n    http2 on;") == std::string::npos);
    }
    SUBCASE("the http2 directive of nginx 1.25.1, and kTLS, on request") {
        site.http2 = Http2Syntax::directive;
        site.ktls = KernelTls::on;
        const auto modern = render_production_nginx_config(*config, site);
        REQUIRE(modern);
        CHECK(modern->find("listen 443 ssl;\n    http2 on;\n") != std::string::npos);
        CHECK(modern->find("http2;") == std::string::npos);
        CHECK(modern->find("\n    ssl_conf_command Options KTLS;\n") != std::string::npos);
    }
}

TEST_CASE("storage_location") {
    const std::string block = "location /_storage/ {\n    alias @STORAGE_PATH@/;\n}\n";
    auto c = load_config(base());
    REQUIRE(c);
    CHECK(*storage_location(*c, block) == "location /_storage/ {\n    alias /tmp/s/;\n}\n");
    auto env = base();
    env.erase("STORAGE_PATH");
    env["NIXERY_STORAGE_BACKEND"] = "gcs";
    env["GCS_BUCKET"] = "b";
    auto gcs = load_config(env);
    REQUIRE_MESSAGE(gcs, gcs.error().message);
    const auto none = storage_location(*gcs, block);
    REQUIRE(none);
    CHECK(none->find("alias") == std::string::npos);
    CHECK(none->rfind("#", 0) == 0);
}

TEST_CASE("render_template") {
    CHECK(*render_template("a @X@ b @Y@", {{"X", "1"}, {"Y", "2"}}) == "a 1 b 2");
    CHECK(*render_template("mail me@example.com", {}) == "mail me@example.com");
    CHECK_FALSE(render_template("@MISSING@", {}));
}
