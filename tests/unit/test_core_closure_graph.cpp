#include "core/closure_graph.hpp"

#include <doctest/doctest.h>
#include <string>
#include <vector>

using namespace nixery;

TEST_SUITE_BEGIN("core");

TEST_CASE("parse_references_graph") {
    SUBCASE("the structured-attrs format with explicit roots") {
        const auto g = parse_references_graph(R"({
            "exportReferencesGraph": {"graph": ["/nix/store/x-a"]},
            "graph": [
              {"path": "/nix/store/x-a", "narSize": 10, "closureSize": 30, "references": ["/nix/store/x-a", "/nix/store/x-b"]},
              {"path": "/nix/store/x-b", "narSize": 20, "closureSize": 20, "references": []}
            ]})");
        REQUIRE(g);
        CHECK(g->roots == std::vector<std::string>{"/nix/store/x-a"});
        REQUIRE(g->paths.size() == 2);
        CHECK(g->paths[0].nar_size == 10);
        CHECK(g->paths[0].references.size() == 2);
    }
    SUBCASE("deep nesting is an error, not a crash") {
        const std::size_t depth = 1'000'000;
        CHECK_FALSE(parse_references_graph("{\"graph\":" + std::string(depth, '[') +
                                           std::string(depth, ']') + "}"));
    }
    SUBCASE("without roots, the unreferenced paths are the roots") {
        const auto g = parse_references_graph(
            R"({"graph": [{"path": "/a", "narSize": 1, "references": ["/b"]}, {"path": "/b", "narSize": 1, "references": ["/b"]}]})");
        REQUIRE(g);
        CHECK(g->roots == std::vector<std::string>{"/a"});
    }
    SUBCASE("malformed input is an error naming the problem") {
        CHECK(parse_references_graph("{").error().message.find("parse references graph failed") ==
              0);
        CHECK(parse_references_graph(R"({"graph": [{"narSize": 1}]})")
                  .error()
                  .message.find("\"path\"") != std::string::npos);
        CHECK(!parse_references_graph(R"({"graph": [{"path": "/a", "narSize": -1}]})"));
    }
    SUBCASE("a path listed twice is an error (it would be in two layers; found by fuzzing)") {
        const auto g = parse_references_graph(
            R"({"graph": [{"path": "/a", "references": ["/b"]}, {"path": "/b"}, {"path": "/b"}]})");
        REQUIRE_FALSE(g);
        CHECK(g.error().message.find("\"/b\" is listed twice") != std::string::npos);
    }
}

TEST_SUITE_END();
