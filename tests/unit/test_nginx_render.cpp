#include "config.hpp"
#include "nginx/render.hpp"

#include <doctest/doctest.h>

using namespace nixery;

namespace {

Environment base() {
    return {{"STORAGE_PATH", "/tmp/s"}, {"NIXERY_STATE_DIR", "/tmp/st"}};
}

} // namespace

TEST_SUITE_BEGIN("nginx");

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
    // NIXERY_BUILD_TIMEOUT (1800 s) and ten minutes of packing.
    CHECK(text->find("fastcgi_read_timeout 2400s;") != std::string::npos);
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

TEST_CASE("render_production_nginx_config: settings nginx would otherwise refuse") {
    auto env = base();
    env["NIXERY_MANIFEST_BURST"] = "0";
    auto config = load_config(env);
    REQUIRE(config);
    ProductionSite site;
    site.access_log = "off";
    site.https_listen = "[::]:8443";
    const auto text = render_production_nginx_config(*config, site);
    REQUIRE_MESSAGE(text, (text ? "" : text.error().message));
    CHECK(text->find("limit_req zone=nixery_manifests;") != std::string::npos);
    CHECK(text->find("limit_req_log_level info;") != std::string::npos);
    CHECK(text->find("burst=") == std::string::npos);
    CHECK(text->find("access_log off;") != std::string::npos);
    CHECK(text->find("return 301 https://$host:8443$request_uri;") != std::string::npos);

    site.https_listen = "127.0.0.1:443";
    const auto default_port = render_production_nginx_config(*config, site);
    REQUIRE(default_port);
    CHECK(default_port->find("return 301 https://$host$request_uri;") != std::string::npos);
}

TEST_CASE("nginx configurations: directories nginx cannot name are refused") {
    for (const auto* bad : {"/srv/nixery blobs", "/srv/$blobs", "/srv/nix;ery", "/srv/\"x\""}) {
        auto env = base();
        env["STORAGE_PATH"] = bad;
        auto config = load_config(env);
        REQUIRE(config);
        const auto text = render_production_nginx_config(*config, ProductionSite{});
        REQUIRE_FALSE(text);
        CHECK(text.error().message.find("STORAGE_PATH=\"" + std::string(bad) +
                                        "\" has a character nginx's configuration cannot "
                                        "hold") == 0);
        env = base();
        env["NIXERY_STATE_DIR"] = bad;
        config = load_config(env);
        REQUIRE(config);
        const auto local = write_local_nginx_config(*config);
        REQUIRE_FALSE(local);
        CHECK(local.error().message.find("NIXERY_STATE_DIR=\"" + std::string(bad) + "\" has") == 0);
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

TEST_SUITE_END();
