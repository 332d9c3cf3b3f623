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

TEST_SUITE_BEGIN("core");

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

TEST_CASE("layers_to_json") {
    Layer l;
    l.paths = {"/nix/store/x-a"};
    l.size = 3;
    l.merge_rating = 7;
    CHECK(layers_to_json({l}) ==
          R"({"layers":[{"paths":["/nix/store/x-a"],"size":3,"mergeRating":7}]})");
}

TEST_SUITE_END();
