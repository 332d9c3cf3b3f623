#include "core/dominators.hpp"
#include "core/layers.hpp"

#include <doctest/doctest.h>
#include <set>

using namespace nixery;

namespace {

constexpr std::uint64_t MB = 1'000'000;

std::string sp(char name) {
    // A store path whose name is the single letter, hash padded to 32 chars.
    return std::string("/nix/store/") + std::string(32, 'a') + "-" + name;
}

// The worked example of ../shared/LAYERING.md.
ClosureGraph worked_example() {
    ClosureGraph g;
    g.roots = {sp('A'), sp('B'), sp('C'), sp('D')};
    g.paths = {
        {sp('A'), 1 * MB, {sp('E')}},
        {sp('B'), 2 * MB, {sp('E')}},
        {sp('C'), 3 * MB, {sp('E'), sp('D')}},
        {sp('D'), 10 * MB, {sp('F'), sp('G')}},
        {sp('E'), 1 * MB, {sp('E')}}, // a self-reference, as Nix lists it
        {sp('F'), 10 * MB, {}},
        {sp('G'), 200 * MB, {}},
    };
    return g;
}

Popularity worked_popularity() {
    return *Popularity::parse(R"({"E": 100})");
}

// Layers as sets of node letters, in manifest order.
std::vector<std::string> letters(const std::vector<Layer>& layers) {
    std::vector<std::string> out;
    for (const auto& l : layers) {
        std::string s;
        for (const auto& p : l.paths) {
            s += p.back();
        }
        out.push_back(s);
    }
    return out;
}

std::set<std::string> as_set(const std::vector<std::string>& v) {
    return {v.begin(), v.end()};
}

} // namespace

TEST_CASE("immediate_dominators") {
    SUBCASE("diamond: the join is dominated by the root") {
        // 0 → 1, 0 → 2, 1 → 3, 2 → 3, 3 → 4
        const std::vector<std::vector<int>> succ{{1, 2}, {3}, {3}, {4}, {}};
        CHECK(immediate_dominators(succ, 0) == std::vector<int>{0, 0, 0, 0, 3});
    }
    SUBCASE("unreachable nodes have no dominator") {
        const std::vector<std::vector<int>> succ{{1}, {}, {1}};
        CHECK(immediate_dominators(succ, 0) == std::vector<int>{0, 0, -1});
    }
    SUBCASE("a loop back to an ancestor") {
        // 0 → 1 → 2 → 3 → 1, 2 → 4
        const std::vector<std::vector<int>> succ{{1}, {2}, {3, 4}, {1}, {}};
        CHECK(immediate_dominators(succ, 0) == std::vector<int>{0, 0, 1, 2, 2});
    }
    SUBCASE("a long chain does not exhaust the stack") {
        std::vector<std::vector<int>> succ(200000);
        for (int i = 0; i + 1 < 200000; ++i) {
            succ[static_cast<std::size_t>(i)].push_back(i + 1);
        }
        const auto idom = immediate_dominators(succ, 0);
        CHECK(idom[199999] == 199998);
    }
}

TEST_CASE("group_layers: the worked example of LAYERING.md") {
    const auto g = worked_example();
    const auto pop = worked_popularity();

    SUBCASE("before merging: ratings and contents") {
        const auto layers = group_layers(g, pop, 10);
        CHECK(letters(layers) == std::vector<std::string>{"G", "E", "DF", "C", "B", "A"});
        std::vector<std::uint64_t> ratings;
        for (const auto& l : layers) {
            ratings.push_back(l.merge_rating);
        }
        CHECK(ratings ==
              std::vector<std::uint64_t>{200 * MB, 100 * MB, 20 * MB, 3 * MB, 2 * MB, 1 * MB});
        CHECK(layers[2].size == 20 * MB);
    }
    SUBCASE("budget 4") {
        CHECK(as_set(letters(group_layers(g, pop, 4))) ==
              std::set<std::string>{"ABC", "DF", "E", "G"});
    }
    SUBCASE("budget 3") {
        CHECK(as_set(letters(group_layers(g, pop, 3))) == std::set<std::string>{"ABCDF", "E", "G"});
    }
    SUBCASE("budget 2") {
        CHECK(as_set(letters(group_layers(g, pop, 2))) == std::set<std::string>{"ABCDEF", "G"});
    }
    SUBCASE("budget 1") {
        CHECK(letters(group_layers(g, pop, 1)) == std::vector<std::string>{"ABCDEFG"});
    }
    SUBCASE("manifest order is by merge rating, highest first") {
        const auto layers = group_layers(g, pop, 4);
        CHECK(letters(layers) == std::vector<std::string>{"G", "E", "DF", "ABC"});
        CHECK(layers[3].merge_rating == 6 * MB);
    }
}

TEST_CASE("group_layers: invariants") {
    SUBCASE("every store path is in exactly one layer at every budget") {
        const auto g = worked_example();
        for (std::size_t budget = 1; budget <= 8; ++budget) {
            std::multiset<std::string> seen;
            for (const auto& l : group_layers(g, worked_popularity(), budget)) {
                seen.insert(l.paths.begin(), l.paths.end());
            }
            CHECK(seen.size() == g.paths.size());
            CHECK(std::set<std::string>(seen.begin(), seen.end()).size() == g.paths.size());
        }
    }
    SUBCASE("paths the roots do not reach are left out") {
        ClosureGraph g;
        g.roots = {sp('A')};
        g.paths = {{sp('A'), 1, {}}, {sp('Z'), 1, {}}};
        CHECK(letters(group_layers(g, Popularity(), 94)) == std::vector<std::string>{"A"});
    }
    SUBCASE("certificates count as the most popular of all") {
        ClosureGraph g;
        const std::string cacert = "/nix/store/" + std::string(32, 'c') + "-nss-cacert-3.98";
        g.roots = {sp('A'), cacert};
        g.paths = {{sp('A'), 5 * MB, {}}, {cacert, 1 * MB, {}}};
        const auto pop = *Popularity::parse(R"({"A": 5000})");
        const auto layers = group_layers(g, pop, 94);
        REQUIRE(layers.size() == 2);
        CHECK(pop.of_store_path(cacert) == 5001);
        CHECK(layers[1].paths.front() == cacert); // 5001 × 1 MB < 5000 × 5 MB
    }
    SUBCASE("the same input gives the same layers") {
        const auto a = group_layers(worked_example(), worked_popularity(), 3);
        const auto b = group_layers(worked_example(), worked_popularity(), 3);
        CHECK(layers_to_json(a) == layers_to_json(b));
    }
}

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

TEST_CASE("layers_to_json") {
    Layer l;
    l.paths = {"/nix/store/x-a"};
    l.size = 3;
    l.merge_rating = 7;
    CHECK(layers_to_json({l}) ==
          R"({"layers":[{"paths":["/nix/store/x-a"],"size":3,"mergeRating":7}]})");
}

#include "core/popcount.hpp"

TEST_CASE("count_popularity") {
    // app1 → lib → libc, app2 → lib → libc, app2 → libc, tool → libc
    const auto h = std::string(32, 'h');
    const auto p = [&](const char* name) { return "/nix/store/" + h + "-" + name; };
    ClosureGraph g;
    g.paths = {{p("app1"), 1, {p("app1"), p("lib-1.0")}},
               {p("app2"), 1, {p("lib-1.0"), p("libc-2.40")}},
               {p("tool"), 1, {p("libc-2.40")}},
               {p("lib-1.0"), 1, {p("libc-2.40")}},
               {p("libc-2.40"), 1, {}}};
    const auto counts = count_popularity(g, {p("app1"), p("app2"), p("tool"), p("lib-1.0"),
                                             p("app1"), p("libc-2.40"), p("not-built")});
    CHECK(counts == std::map<std::string, std::uint64_t>{{"lib-1.0", 2}, {"libc-2.40", 4}});
    CHECK(popularity_json(counts) == "{\n  \"lib-1.0\": 2,\n  \"libc-2.40\": 4\n}");
}

TEST_CASE("Popularity::parse") {
    SUBCASE("counts as integers or numbers; huge ones clamped (found by fuzzing)") {
        const auto p = Popularity::parse(
            R"({"glibc-2.40": 4000, "big": 1e30, "huger": 18446744073709551615})");
        REQUIRE(p);
        CHECK(p->of_store_path("/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-glibc-2.40") == 4000);
        CHECK(p->of_store_path("/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-big") ==
              std::uint64_t{1} << 32);
        CHECK(p->of_store_path("/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-huger") ==
              std::uint64_t{1} << 32);
        CHECK(p->of_store_path("/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-cacert-3.9") >
              (std::uint64_t{1} << 32));
    }
    SUBCASE("a negative count is an error naming the package") {
        const auto p = Popularity::parse(R"({"x": -1})");
        REQUIRE_FALSE(p);
        CHECK(p.error().message.find("\"x\"") != std::string::npos);
    }
}
