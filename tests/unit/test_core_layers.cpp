#include "core/layers.hpp"

#include <algorithm>
#include <cstdio>
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

TEST_CASE("group_layers: merging when there are more layers than the budget") {
    // Independent roots, each a layer of its own before merging.
    const auto roots = [](std::vector<std::pair<char, std::uint64_t>> sized) {
        ClosureGraph g;
        for (const auto& [name, size] : sized) {
            g.roots.push_back(sp(name));
            g.paths.push_back({sp(name), size, {}});
        }
        return g;
    };
    SUBCASE("the layers worth least become one layer, not several") {
        const auto g =
            roots({{'A', 1 * MB}, {'B', 1 * MB}, {'C', 1 * MB}, {'D', 1 * MB}, {'E', 10 * MB}});
        const auto layers = group_layers(g, Popularity(), 3, LayeringStrategy::popularity);
        // Pairwise merging of the two lowest would give {A,B} {C,D} {E}: two
        // layers that only an image with all four has.
        CHECK(letters(layers) == std::vector<std::string>{"E", "BCD", "A"});
        CHECK(layers[1].merge_rating == 3 * MB); // ratings add up
    }
    SUBCASE("popularity counts up to the popular threshold for what stays alone") {
        // P: 1 MB that 5000 packages use, Q: 50 MB that 3 use. Both are in
        // nearly every image that has Q; keeping Q alone saves more bytes.
        const auto g = roots({{'P', 1 * MB}, {'Q', 50 * MB}, {'R', 2 * MB}});
        const auto pop = *Popularity::parse(R"({"P": 5000, "Q": 3})");
        const auto layers = group_layers(g, pop, 2, LayeringStrategy::popularity);
        CHECK(letters(layers) == std::vector<std::string>{"PR", "Q"});
        // The manifest order still follows the full ratings.
        CHECK(layers[0].merge_rating == 5000 * MB + 2 * MB);
        CHECK(layers[1].merge_rating == 150 * MB);
    }
    SUBCASE("within the budget nothing merges") {
        const auto g = roots({{'A', 1 * MB}, {'B', 2 * MB}, {'C', 3 * MB}});
        CHECK(letters(group_layers(g, Popularity(), 3, LayeringStrategy::popularity)) ==
              std::vector<std::string>{"C", "B", "A"});
    }
}

namespace {

// n small store paths "p000"… (1 kB each) with hashes from `hash_char`,
// all of them roots.
ClosureGraph flat_closure(const std::vector<std::string>& names, char hash_char = 'a') {
    ClosureGraph g;
    for (const auto& name : names) {
        const auto path = "/nix/store/" + std::string(32, hash_char) + "-" + name;
        g.roots.push_back(path);
        g.paths.push_back({path, 1000, {}});
    }
    return g;
}

std::vector<std::string> numbered(const char* prefix, int n) {
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%s%03d-1.0", prefix, i);
        out.emplace_back(buf);
    }
    return out;
}

std::set<std::vector<std::string>> layer_set(const std::vector<Layer>& layers) {
    std::set<std::vector<std::string>> out;
    for (const auto& l : layers) {
        out.insert(l.paths);
    }
    return out;
}

std::size_t not_in(const std::vector<Layer>& a, const std::vector<Layer>& b) {
    const auto in_b = layer_set(b);
    return static_cast<std::size_t>(std::count_if(
        a.begin(), a.end(), [&](const Layer& l) { return in_b.count(l.paths) == 0; }));
}

} // namespace

TEST_CASE("layering strategies") {
    const auto data = *Popularity::parse(R"({"x-1": 5})");
    CHECK(parse_layering_strategy("auto") == LayeringStrategy::automatic);
    CHECK(parse_layering_strategy("popularity") == LayeringStrategy::popularity);
    CHECK(parse_layering_strategy("chunks") == LayeringStrategy::chunks);
    CHECK(!parse_layering_strategy("size"));
    CHECK(to_string(LayeringStrategy::chunks) == "chunks");
    SUBCASE("auto is popularity with data, chunks without") {
        CHECK(effective_strategy(LayeringStrategy::automatic, data) ==
              LayeringStrategy::popularity);
        CHECK(effective_strategy(LayeringStrategy::automatic, Popularity()) ==
              LayeringStrategy::chunks);
        CHECK(effective_strategy(LayeringStrategy::chunks, data) == LayeringStrategy::chunks);
    }
    SUBCASE("the identity names what the layers depend on") {
        CHECK(layering_identity(LayeringStrategy::automatic, data) ==
              layering_identity(LayeringStrategy::popularity, data));
        CHECK(layering_identity(LayeringStrategy::automatic, Popularity()) ==
              layering_identity(LayeringStrategy::chunks, data)); // chunks read no data
        CHECK(layering_identity(LayeringStrategy::popularity, data) !=
              layering_identity(LayeringStrategy::popularity, *Popularity::parse("{}")));
        CHECK(layering_identity(LayeringStrategy::popularity, data) !=
              layering_identity(LayeringStrategy::chunks, data));
    }
    SUBCASE("auto without data groups as chunks do") {
        const auto g = worked_example();
        CHECK(layers_to_json(group_layers(g, Popularity(), 3, LayeringStrategy::automatic)) ==
              layers_to_json(group_layers(g, data, 3, LayeringStrategy::chunks)));
    }
}

TEST_CASE("group_layers: the chunks strategy") {
    SUBCASE("a closure that fits the budget: one layer per store path, by size") {
        const auto layers =
            group_layers(worked_example(), Popularity(), 10, LayeringStrategy::chunks);
        CHECK(letters(layers) == std::vector<std::string>{"G", "D", "F", "C", "B", "A", "E"});
        CHECK(layers[0].merge_rating == 200 * MB);
    }
    SUBCASE("paths the roots do not reach are left out") {
        ClosureGraph g;
        g.roots = {sp('A')};
        g.paths = {{sp('A'), 1, {}}, {sp('Z'), 1, {}}};
        CHECK(letters(group_layers(g, Popularity(), 94, LayeringStrategy::chunks)) ==
              std::vector<std::string>{"A"});
    }
    SUBCASE("over the budget: within it, every path once, big paths alone") {
        auto g = flat_closure(numbered("p", 300));
        g.paths[7].nar_size = 50 * MB;
        g.paths[200].nar_size = 3 * MB;
        for (const std::size_t budget : {1, 2, 3, 20, 94, 299}) {
            const auto layers = group_layers(g, Popularity(), budget, LayeringStrategy::chunks);
            CHECK(layers.size() <= budget);
            std::multiset<std::string> seen;
            for (const auto& l : layers) {
                seen.insert(l.paths.begin(), l.paths.end());
                CHECK(std::is_sorted(l.paths.begin(), l.paths.end()));
            }
            CHECK(seen.size() == 300);
            CHECK(std::set<std::string>(seen.begin(), seen.end()).size() == 300);
            if (budget >= 4) {
                CHECK(layers[0].paths == std::vector<std::string>{g.paths[7].path});
                CHECK(layers[1].paths == std::vector<std::string>{g.paths[200].path});
            }
        }
    }
    SUBCASE("the order the graph lists paths in does not matter") {
        auto g = flat_closure(numbered("p", 300));
        auto reversed = g;
        std::reverse(reversed.paths.begin(), reversed.paths.end());
        std::reverse(reversed.roots.begin(), reversed.roots.end());
        CHECK(layers_to_json(group_layers(g, Popularity(), 20, LayeringStrategy::chunks)) ==
              layers_to_json(group_layers(reversed, Popularity(), 20, LayeringStrategy::chunks)));
    }
    SUBCASE("images that differ in one path share every other chunk") {
        auto names = numbered("p", 300);
        const auto a =
            group_layers(flat_closure(names), Popularity(), 20, LayeringStrategy::chunks);
        names[150] = "q150-1.0";
        const auto b =
            group_layers(flat_closure(names), Popularity(), 20, LayeringStrategy::chunks);
        REQUIRE(a.size() > 5);
        // The chunk p150 was in, and the one q150 joins (a cut at q150 would
        // split one).
        CHECK(not_in(a, b) <= 2);
        CHECK(not_in(b, a) <= 3);
    }
    SUBCASE("a version bump changes only the chunk of the bumped path") {
        auto names = numbered("p", 300);
        auto before = flat_closure(names);
        names[42] = "p042-2.0";
        auto after = flat_closure(names);
        after.paths[42].path[11] = 'b'; // a new hash, too
        const auto a = group_layers(before, Popularity(), 20, LayeringStrategy::chunks);
        const auto b = group_layers(after, Popularity(), 20, LayeringStrategy::chunks);
        CHECK(a.size() == b.size());
        CHECK(not_in(a, b) == 1);
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
