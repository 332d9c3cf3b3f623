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
    SUBCASE("paths the roots do not reach are left out, big or popular ones too") {
        ClosureGraph g;
        g.roots = {sp('A')};
        g.paths = {{sp('A'), 1, {}}, {sp('Z'), 1, {}}, {sp('Y'), 200 * MB, {}}, {sp('X'), 1, {}}};
        const auto popular_x = *Popularity::parse(R"({"X": 1000})");
        CHECK(letters(group_layers(g, Popularity(), 94)) == std::vector<std::string>{"A"});
        CHECK(letters(group_layers(g, popular_x, 94)) == std::vector<std::string>{"A"});
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

TEST_CASE("group_layers: a small dependency joins the package nearly all its users use") {
    // Y (used by 200 packages) references X; W (used by 1) does too. Both
    // X and Y are popular, so each starts a layer of its own.
    const auto image = [](bool with_w, std::uint64_t x_size) {
        ClosureGraph g;
        g.roots = {sp('Y')};
        g.paths = {{sp('Y'), 3 * MB, {sp('X')}}, {sp('X'), x_size, {}}};
        if (with_w) {
            g.roots.push_back(sp('W'));
            g.paths.push_back({sp('W'), 2 * MB, {sp('X')}});
        }
        return g;
    };
    const auto pop = *Popularity::parse(R"({"Y": 200, "X": 250, "W": 1})");
    SUBCASE("X's users are nearly all Y's: one layer, the same in every image with Y") {
        const auto a = group_layers(image(false, 1 * MB), pop, 94, LayeringStrategy::popularity);
        const auto b = group_layers(image(true, 1 * MB), pop, 94, LayeringStrategy::popularity);
        CHECK(letters(a) == std::vector<std::string>{"XY"});
        CHECK(letters(b) == std::vector<std::string>{"XY", "W"});
        CHECK(layers_to_json({a[0]}) == layers_to_json({b[0]})); // a layer both images share
        CHECK(a[0].merge_rating == 200 * 3 * MB + 250 * MB);     // ratings add up
    }
    SUBCASE("the limit: Y's users and half again, plus Y itself") {
        const auto at = *Popularity::parse(R"({"Y": 200, "X": 301, "W": 1})");
        CHECK(letters(group_layers(image(true, 1 * MB), at, 94, LayeringStrategy::popularity)) ==
              std::vector<std::string>{"XY", "W"});
        const auto past = *Popularity::parse(R"({"Y": 200, "X": 302, "W": 1})");
        CHECK(letters(group_layers(image(true, 1 * MB), past, 94, LayeringStrategy::popularity)) ==
              std::vector<std::string>{"Y", "X", "W"});
    }
    SUBCASE("a joined layer is worth what its least used part is") {
        // X (3 users) joins Y (2): the layer XY, 4 MB, is in as many images
        // as Y is, so it is worth 2 × 4 MB, less than Z's 2 × 5 MB, and
        // merges with W (whose rating makes it first).
        auto g = image(true, 1 * MB);
        g.roots.push_back(sp('Z'));
        g.paths.push_back({sp('Z'), 5 * MB, {}});
        const auto few = *Popularity::parse(R"({"Y": 2, "X": 3, "W": 1, "Z": 2})");
        CHECK(letters(group_layers(g, few, 2, LayeringStrategy::popularity)) ==
              std::vector<std::string>{"WXY", "Z"});
    }
    SUBCASE("a much more popular dependency stays alone") {
        const auto more = *Popularity::parse(R"({"Y": 200, "X": 400, "W": 1})");
        CHECK(letters(group_layers(image(true, 1 * MB), more, 94, LayeringStrategy::popularity)) ==
              std::vector<std::string>{"Y", "X", "W"});
    }
    SUBCASE("a big dependency stays alone") {
        CHECK(letters(group_layers(image(true, k_join_max_size), pop, 94,
                                   LayeringStrategy::popularity)) ==
              std::vector<std::string>{"X", "Y", "W"});
    }
    SUBCASE("after a version bump, stale data joins the new version the same way") {
        const auto path = [](const char* name) {
            return "/nix/store/" + std::string(32, 'a') + "-" + name;
        };
        const auto stale = *Popularity::parse(R"({"y-2.0": 200, "x-1.0": 250})");
        ClosureGraph g;
        g.roots = {path("y-2.0"), path("w-1.0")};
        g.paths = {{path("y-2.0"), 3 * MB, {path("x-1.1")}},
                   {path("x-1.1"), 1 * MB, {}},
                   {path("w-1.0"), 2 * MB, {path("x-1.1")}}};
        const auto layers = group_layers(g, stale, 94, LayeringStrategy::popularity);
        REQUIRE(layers.size() == 2);
        CHECK(layers[0].paths == std::vector<std::string>{path("x-1.1"), path("y-2.0")});
    }
    SUBCASE("without popularity data nothing joins") {
        CHECK(as_set(letters(group_layers(image(true, 1 * MB), Popularity(), 94,
                                          LayeringStrategy::popularity))) ==
              std::set<std::string>{"X", "Y", "W"});
    }
}

TEST_CASE("group_layers: the popularity strategy on a larger closure") {
    // 150 paths: each references a few earlier ones; sizes from 10 kB to
    // 12 MB; popularity listed for most, some close to a referrer's.
    ClosureGraph g;
    std::string data = "{";
    for (int i = 0; i < 150; ++i) {
        char name[32];
        std::snprintf(name, sizeof name, "p%03d-1.0", i);
        const auto path = "/nix/store/" + std::string(32, 'a') + "-" + name;
        std::vector<std::string> refs;
        for (const int j : {i / 2, i / 3, i - 1}) {
            if (j >= 0 && j < i && i % 4 != 0) {
                refs.push_back(g.paths[static_cast<std::size_t>(j)].path);
            }
        }
        g.paths.push_back({path, static_cast<std::uint64_t>((i * 37) % 120 + 1) * 100'000, refs});
        if (i % 5 != 0) {
            data += std::string(data.size() > 1 ? "," : "") + "\"" + name +
                    "\":" + std::to_string((150 - i) * (i % 3 + 1));
        }
    }
    // The roots: every path nothing references.
    std::set<std::string> referenced;
    for (const auto& p : g.paths) {
        referenced.insert(p.references.begin(), p.references.end());
    }
    for (const auto& p : g.paths) {
        if (referenced.count(p.path) == 0) {
            g.roots.push_back(p.path);
        }
    }
    const auto pop = *Popularity::parse(data + "}");
    REQUIRE(pop.size() == 120);
    // Enough layers that small budgets merge, and some that joined.
    const auto unbounded = group_layers(g, pop, 1000, LayeringStrategy::popularity);
    REQUIRE(unbounded.size() > 30);
    REQUIRE(std::any_of(unbounded.begin(), unbounded.end(),
                        [](const Layer& l) { return l.paths.size() > 1; }));
    SUBCASE("within the budget, every path once, at every budget") {
        for (std::size_t budget = 1; budget <= 100; budget += 3) {
            const auto layers = group_layers(g, pop, budget, LayeringStrategy::popularity);
            CHECK(layers.size() <= budget);
            std::set<std::string> seen;
            std::size_t count = 0;
            for (const auto& l : layers) {
                seen.insert(l.paths.begin(), l.paths.end());
                count += l.paths.size();
            }
            CHECK(count == g.paths.size());
            CHECK(seen.size() == g.paths.size());
        }
    }
    SUBCASE("the order the graph lists paths and roots in does not matter") {
        auto reversed = g;
        std::reverse(reversed.paths.begin(), reversed.paths.end());
        std::reverse(reversed.roots.begin(), reversed.roots.end());
        for (const std::size_t budget : {5, 20, 94}) {
            CHECK(
                layers_to_json(group_layers(g, pop, budget, LayeringStrategy::popularity)) ==
                layers_to_json(group_layers(reversed, pop, budget, LayeringStrategy::popularity)));
        }
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
    CHECK(parse_layering_strategy("size") == LayeringStrategy::size);
    CHECK(parse_layering_strategy("chunks") == LayeringStrategy::size); // its former name
    CHECK(!parse_layering_strategy("Size"));
    CHECK(to_string(LayeringStrategy::size) == "size");
    SUBCASE("auto is popularity with data, size without") {
        CHECK(effective_strategy(LayeringStrategy::automatic, data) ==
              LayeringStrategy::popularity);
        CHECK(effective_strategy(LayeringStrategy::automatic, Popularity()) ==
              LayeringStrategy::size);
        CHECK(effective_strategy(LayeringStrategy::size, data) == LayeringStrategy::size);
    }
    SUBCASE("the identity names what the layers depend on") {
        CHECK(layering_identity(LayeringStrategy::automatic, data) ==
              layering_identity(LayeringStrategy::popularity, data));
        CHECK(layering_identity(LayeringStrategy::automatic, Popularity()) ==
              layering_identity(LayeringStrategy::size, data)); // size reads no data
        CHECK(layering_identity(LayeringStrategy::popularity, data) !=
              layering_identity(LayeringStrategy::popularity, *Popularity::parse("{}")));
        CHECK(layering_identity(LayeringStrategy::popularity, data) !=
              layering_identity(LayeringStrategy::size, data));
        // Cache keys name it: a change rebuilds the images it grouped.
        CHECK(layering_identity(LayeringStrategy::size, Popularity()) == "size:1");
    }
    SUBCASE("auto without data groups as size does") {
        const auto g = worked_example();
        CHECK(layers_to_json(group_layers(g, Popularity(), 3, LayeringStrategy::automatic)) ==
              layers_to_json(group_layers(g, data, 3, LayeringStrategy::size)));
    }
}

TEST_CASE("group_layers: the size strategy") {
    SUBCASE("a closure that fits the budget: one layer per store path, by size") {
        const auto layers =
            group_layers(worked_example(), Popularity(), 10, LayeringStrategy::size);
        CHECK(letters(layers) == std::vector<std::string>{"G", "D", "F", "C", "B", "A", "E"});
        CHECK(layers[0].merge_rating == 200 * MB);
    }
    SUBCASE("paths the roots do not reach are left out") {
        ClosureGraph g;
        g.roots = {sp('A')};
        g.paths = {{sp('A'), 1, {}}, {sp('Z'), 1, {}}};
        CHECK(letters(group_layers(g, Popularity(), 94, LayeringStrategy::size)) ==
              std::vector<std::string>{"A"});
    }
    SUBCASE("over the budget: the budget - 1 biggest alone, the rest in one layer") {
        auto g = flat_closure(numbered("p", 300));
        g.paths[7].nar_size = 50 * MB;
        g.paths[200].nar_size = 3 * MB;
        g.paths[100].nar_size = 2000;
        for (const std::size_t budget : {1, 2, 3, 20, 94, 299}) {
            CAPTURE(budget);
            const auto layers = group_layers(g, Popularity(), budget, LayeringStrategy::size);
            CHECK(layers.size() == budget);
            std::multiset<std::string> seen;
            std::size_t alone = 0;
            for (const auto& l : layers) {
                seen.insert(l.paths.begin(), l.paths.end());
                CHECK(std::is_sorted(l.paths.begin(), l.paths.end()));
                alone += l.paths.size() == 1 ? 1 : 0;
            }
            CHECK(seen.size() == 300);
            CHECK(std::set<std::string>(seen.begin(), seen.end()).size() == 300);
            CHECK(alone == budget - 1);
            if (budget >= 4 && budget <= 94) {
                CHECK(layers[0].paths == std::vector<std::string>{g.paths[7].path});
                CHECK(layers[1].paths == std::vector<std::string>{g.paths[200].path});
                // Then the leftover (its rating is its size), then p100.
                CHECK(layers[2].paths.size() == 300 - (budget - 1));
                CHECK(layers[3].paths == std::vector<std::string>{g.paths[100].path});
            }
        }
    }
    SUBCASE("the order the graph lists paths in does not matter") {
        auto g = flat_closure(numbered("p", 300));
        auto reversed = g;
        std::reverse(reversed.paths.begin(), reversed.paths.end());
        std::reverse(reversed.roots.begin(), reversed.roots.end());
        CHECK(layers_to_json(group_layers(g, Popularity(), 20, LayeringStrategy::size)) ==
              layers_to_json(group_layers(reversed, Popularity(), 20, LayeringStrategy::size)));
    }
    SUBCASE("a version bump changes only the layer of the bumped path") {
        auto names = numbered("p", 300);
        auto before = flat_closure(names);
        for (std::size_t i = 0; i < 300; ++i) {
            before.paths[i].nar_size = 1000 + i; // p299 biggest: p281-p299 alone at 20
        }
        for (const std::size_t bumped : {42, 290}) {
            CAPTURE(bumped);
            auto after = before;
            after.paths[bumped].path[11] = 'b'; // a new hash
            after.roots[bumped] = after.paths[bumped].path;
            const auto a = group_layers(before, Popularity(), 20, LayeringStrategy::size);
            const auto b = group_layers(after, Popularity(), 20, LayeringStrategy::size);
            CHECK(a.size() == b.size());
            CHECK(not_in(a, b) == 1);
        }
    }
}

namespace {

// A package `name` with `deps` dependencies of its own, named name-dNN, of
// `size` bytes each, and a reference to every path of `shared`.
void add_package(ClosureGraph& g, const std::string& name, int deps, std::uint64_t size,
                 const std::vector<std::string>& shared = {}) {
    const auto path = [](const std::string& n) {
        return "/nix/store/" + std::string(32, 'a') + "-" + n;
    };
    StorePathInfo top{path(name + "-1.0"), 5 * MB, {}};
    for (int i = 0; i < deps; ++i) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%s-d%02d-1.0", name.c_str(), i);
        // Sizes differ so that which paths are the biggest is clear.
        g.paths.push_back({path(buf), size + static_cast<std::uint64_t>(i) * 1000, {}});
        top.references.push_back(path(buf));
    }
    for (const auto& s : shared) {
        top.references.push_back(s);
    }
    g.roots.push_back(top.path);
    g.paths.push_back(std::move(top));
}

ClosureGraph image_of(const std::vector<std::tuple<std::string, int, std::uint64_t>>& packages) {
    ClosureGraph g;
    const std::string base = "/nix/store/" + std::string(32, 'a') + "-base-1.0";
    g.paths.push_back({base, 2 * MB, {}});
    for (const auto& [name, deps, size] : packages) {
        add_package(g, name, deps, size, {base});
    }
    return g;
}

// The layer of `layers` with the most paths: the leftover when there is one.
std::vector<std::string> largest(const std::vector<Layer>& layers) {
    return std::max_element(
               layers.begin(), layers.end(),
               [](const Layer& a, const Layer& b) { return a.paths.size() < b.paths.size(); })
        ->paths;
}

} // namespace

TEST_CASE("group_layers: the size strategy starts an image of several packages from a package's "
          "leftover layer") {
    const auto git = image_of({{"git", 30, 1 * MB}});
    const auto git_htop = image_of({{"git", 30, 1 * MB}, {"htop", 25, 100'000}});
    const auto git_htop_tiny =
        image_of({{"tiny", 2, 1000}, {"git", 30, 1 * MB}, {"htop", 25, 100'000}});
    const auto alone = group_layers(git, Popularity(), 10, LayeringStrategy::size);
    REQUIRE(alone.size() == 10);
    const auto leftover = largest(alone);
    REQUIRE(leftover.size() == git.paths.size() - 9);
    for (const auto& image : {git_htop, git_htop_tiny}) {
        const auto layers = group_layers(image, Popularity(), 10, LayeringStrategy::size);
        CHECK(layers.size() == 10);
        CHECK(layer_set(layers).count(leftover) == 1);
        std::multiset<std::string> seen;
        for (const auto& l : layers) {
            seen.insert(l.paths.begin(), l.paths.end());
        }
        CHECK(seen.size() == image.paths.size());
        CHECK(std::set<std::string>(seen.begin(), seen.end()).size() == image.paths.size());
    }
    SUBCASE("the package whose leftover is biggest") {
        const auto big_htop = image_of({{"git", 30, 1 * MB}, {"htop", 25, 5 * MB}});
        const auto htop = image_of({{"htop", 25, 5 * MB}});
        const auto htop_leftover =
            largest(group_layers(htop, Popularity(), 10, LayeringStrategy::size));
        CHECK(layer_set(group_layers(big_htop, Popularity(), 10, LayeringStrategy::size))
                  .count(htop_leftover) == 1);
    }
    SUBCASE("not when the closure fits the budget, nor when no package alone exceeds it") {
        CHECK(group_layers(git_htop, Popularity(), 94, LayeringStrategy::size).size() ==
              git_htop.paths.size());
        // 40 packages of 3 paths each: a grouping of the whole closure.
        std::vector<std::tuple<std::string, int, std::uint64_t>> small;
        for (int i = 0; i < 40; ++i) {
            small.emplace_back("s" + std::to_string(i), 2, 1000 + i);
        }
        const auto many = image_of(small);
        const auto layers = group_layers(many, Popularity(), 10, LayeringStrategy::size);
        CHECK(layers.size() == 10);
        CHECK(largest(layers).size() == many.paths.size() - 9);
    }
    SUBCASE("extra roots (certificates, every image has them) leave the leftover as it is") {
        auto with_extras = git_htop;
        for (const char* extra : {"nss-cacert-1", "iana-etc-1"}) {
            const auto path = "/nix/store/" + std::string(32, 'c') + "-" + extra;
            with_extras.paths.push_back({path, 300'000, {}});
            with_extras.roots.push_back(path);
        }
        auto git_with_extras = git;
        git_with_extras.paths.insert(git_with_extras.paths.end(), with_extras.paths.end() - 2,
                                     with_extras.paths.end());
        git_with_extras.roots.insert(git_with_extras.roots.end(), with_extras.roots.end() - 2,
                                     with_extras.roots.end());
        for (const auto& image : {with_extras, git_with_extras}) {
            const auto layers = group_layers(image, Popularity(), 10, LayeringStrategy::size);
            CHECK(layers.size() == 10);
            CHECK(layer_set(layers).count(leftover) == 1);
        }
    }
    SUBCASE("the order of paths and roots, repeated roots and roots not in the graph do not "
            "matter") {
        auto shuffled = git_htop_tiny;
        std::reverse(shuffled.paths.begin(), shuffled.paths.end());
        std::reverse(shuffled.roots.begin(), shuffled.roots.end());
        shuffled.roots.push_back(shuffled.roots.front());
        shuffled.roots.push_back("/nix/store/" + std::string(32, 'z') + "-absent");
        CHECK(
            layers_to_json(group_layers(shuffled, Popularity(), 10, LayeringStrategy::size)) ==
            layers_to_json(group_layers(git_htop_tiny, Popularity(), 10, LayeringStrategy::size)));
    }
    SUBCASE("budget 2: the leftover and one layer of the rest") {
        const auto layers = group_layers(git_htop, Popularity(), 2, LayeringStrategy::size);
        REQUIRE(layers.size() == 2);
        CHECK(layer_set(layers).count(
                  largest(group_layers(git, Popularity(), 2, LayeringStrategy::size))) == 1);
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
