// Fuzzes the closure graph Nix writes (.attrs.json) and what is computed
// from it: popularity counts and the layer groupings (LAYERING.md's and the
// size strategy's, which starts from a package's own leftover layer), with a
// small budget so merging runs. Every store path must end up in exactly one
// layer (every path the roots reach, and no other), no layer may be empty
// and no grouping may exceed the budget.
#include "core/closure_graph.hpp"
#include "core/layers.hpp"
#include "core/popcount.hpp"
#include "core/popularity.hpp"

#include <cstdint>
#include <cstdlib>
#include <map>
#include <set>
#include <string_view>

using namespace nixery;

namespace {

// The store paths the roots reach, by their references.
std::set<std::string> reached(const ClosureGraph& graph) {
    std::map<std::string_view, const StorePathInfo*> by_path;
    for (const auto& p : graph.paths) {
        by_path.emplace(p.path, &p);
    }
    std::set<std::string> seen;
    std::vector<std::string_view> stack(graph.roots.begin(), graph.roots.end());
    while (!stack.empty()) {
        const auto it = by_path.find(stack.back());
        stack.pop_back();
        if (it == by_path.end() || !seen.insert(std::string(it->first)).second) {
            continue;
        }
        for (const auto& r : it->second->references) {
            stack.push_back(r);
        }
    }
    return seen;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    auto graph = parse_references_graph(input);
    if (!graph || graph->paths.size() > 2000) {
        return 0;
    }
    (void)popularity_json(count_popularity(*graph, {}));
    const Popularity popularity;
    const std::size_t budget = 1 + size % 5;
    for (const auto strategy : {LayeringStrategy::popularity, LayeringStrategy::size}) {
        const auto layers = group_layers(*graph, popularity, budget, strategy);
        if (layers.size() > budget) {
            std::abort();
        }
        std::set<std::string> seen;
        std::size_t total = 0;
        for (const auto& layer : layers) {
            for (const auto& p : layer.paths) {
                seen.insert(p);
                ++total;
            }
        }
        if (total != seen.size()) {
            std::abort(); // a path in two layers
        }
        for (const auto& layer : layers) {
            if (layer.paths.empty()) {
                std::abort();
            }
        }
        // Every path the roots reach, and no other.
        if (seen != reached(*graph)) {
            std::abort();
        }
        (void)layers_to_json(layers);
    }
    return 0;
}
