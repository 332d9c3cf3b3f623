// Grouping an image's store paths into layers (../shared/LAYERING.md).
//
// Runtimes cache layers by digest, so the grouping tries to put the same
// store paths into the same layers across images that share dependencies:
//
//   1. graph: root → every requested package, path → each path it references,
//      and root → every path that is big (NAR > 100 MB) or popular (≥ 100);
//   2. dominator tree from the root: each child of the root starts a layer
//      holding itself and everything it dominates (so a path used by several
//      packages, or a big or popular one, gets a layer of its own);
//   3. merge rating = popularity of the layer's first path × layer size; while
//      there are more layers than the budget, merge the two lowest-rated;
//   4. manifest order: highest rating first, so the layers most likely shared
//      come first.
//
// A layer's identity for caching is its sorted list of store paths. Every
// tie is broken by the smallest store path, so the result is deterministic.
// Pure: no I/O.
#pragma once

#include "core/closure_graph.hpp"
#include "core/popularity.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace nixery {

inline constexpr std::uint64_t k_big_threshold = 100'000'000; // bytes of NAR
inline constexpr std::uint64_t k_popular_threshold = 100;
inline constexpr std::size_t k_default_layer_budget = 94;

struct Layer {
    std::vector<std::string> paths; // sorted
    std::uint64_t size = 0;         // sum of NAR sizes
    std::uint64_t merge_rating = 0;
};

// Layers in manifest order. A budget of 0 is treated as 1. Paths that the
// roots do not reach are left out; roots missing from the graph are ignored.
std::vector<Layer> group_layers(const ClosureGraph& graph, const Popularity& popularity,
                                std::size_t budget = k_default_layer_budget);

// {"layers":[{"paths":[…],"size":N,"mergeRating":R},…]}
std::string layers_to_json(const std::vector<Layer>& layers);

} // namespace nixery
