#include "core/routes.hpp"

#include <doctest/doctest.h>
#include <rapidjson/document.h>

using namespace nixery;

TEST_SUITE_BEGIN("core");

TEST_CASE("parse_route") {
    auto r = parse_route("/v2/shell/git/manifests/latest");
    CHECK(r.kind == RouteKind::manifest);
    CHECK(r.name == "shell/git");
    CHECK(r.reference == "latest");

    r = parse_route("/v2/hello/blobs/sha256:abc");
    CHECK(r.kind == RouteKind::blob);
    CHECK(r.reference == "sha256:abc");

    r = parse_route("/v2/a/b/tags/list");
    CHECK(r.kind == RouteKind::tags);
    CHECK(r.name == "a/b");

    CHECK(parse_route("/v2/").kind == RouteKind::base);
    CHECK(parse_route("/v2").kind == RouteKind::base);
    CHECK(parse_route("/").kind == RouteKind::start_page);
    CHECK(parse_route("/metrics").kind == RouteKind::metrics);
    CHECK(parse_route("/v2/hello/blobs/uploads/").kind == RouteKind::unsupported_api);
    CHECK(parse_route("/v2/_catalog").kind == RouteKind::unsupported_api);
    CHECK(parse_route("/v2/manifests/latest").kind == RouteKind::unsupported_api);
    CHECK(parse_route("/v2//manifests/latest").kind == RouteKind::unsupported_api);
    // A package may be called "manifests" or "blobs": the last marker counts.
    r = parse_route("/v2/a/manifests/b/manifests/latest");
    CHECK(r.kind == RouteKind::manifest);
    CHECK(r.name == "a/manifests/b");
    CHECK(r.reference == "latest");
    r = parse_route("/v2/blobs/blobs/sha256:abc");
    CHECK(r.kind == RouteKind::blob);
    CHECK(r.name == "blobs");
    CHECK(parse_route("/favicon.ico").kind == RouteKind::not_found);
}

TEST_CASE("error_json") {
    auto e = manifest_unknown("package \"nope\" not found", R"({"packages":["nope"]})");
    rapidjson::Document d;
    d.Parse(error_json(e).c_str());
    REQUIRE_FALSE(d.HasParseError());
    CHECK(std::string(d["errors"][0]["code"].GetString()) == "MANIFEST_UNKNOWN");
    CHECK(std::string(d["errors"][0]["message"].GetString()) == "package \"nope\" not found");
    CHECK(std::string(d["errors"][0]["detail"]["packages"][0].GetString()) == "nope");
    CHECK(e.status == 404);

    auto n = name_invalid("Bad\"Name");
    d.Parse(error_json(n).c_str());
    REQUIRE_FALSE(d.HasParseError());
    CHECK(n.status == 400);
    CHECK(std::string(d["errors"][0]["detail"].GetString()) == "Bad\"Name");
}

TEST_CASE("error_json is UTF-8 whatever bytes a path or a log holds") {
    // GET /v2/%FF%FE/manifests/latest; a build log with a stray Latin-1 byte.
    auto e = name_invalid("\xFF\xFE");
    e.message = "invalid repository name \"\xFF\xFE\"";
    e.detail = R"({"log":")" + std::string("caf\xE9 \xC3\xA9") + R"("})";
    const auto json = error_json(e);
    rapidjson::Document d;
    d.Parse<rapidjson::kParseValidateEncodingFlag>(json.c_str());
    REQUIRE_FALSE(d.HasParseError());
    CHECK(std::string(d["errors"][0]["message"].GetString()) ==
          "invalid repository name \"\uFFFD\uFFFD\"");
    CHECK(std::string(d["errors"][0]["detail"]["log"].GetString()) == "caf\uFFFD \u00E9");
    CHECK(json_string("\xC0\xAF") == "\"\uFFFD\uFFFD\""); // an overlong "/"
}

TEST_SUITE_END();
