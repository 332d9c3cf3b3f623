// Fuzzes the closure graph Nix writes (.attrs.json) and what is computed
// from it: popularity counts and the layer groupings (LAYERING.md's and the
// size strategy's, which starts from a package's own leftover layer), with a
// small budget so merging runs. Every store path must end up in exactly one
// layer, and no grouping may exceed the budget.
#include "core/closure_graph.hpp"
#include "core/layers.hpp"
#include "core/popcount.hpp"
#include "core/popularity.hpp"

#include <cstdint>
#include <cstdlib>
#include <set>
#include <string_view>

using namespace nixery;

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
        (void)layers_to_json(layers);
    }
    return 0;
}
