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
//   3. a small path (NAR < 4 MB) joins the layer of a path that references
//      it when nearly every package that uses it uses that path too (its
//      popularity at most 3/2 of the referrer's, plus one): the two are in
//      nearly every image together, and one layer holds both wherever the
//      referrer is. That reads only the two paths and the data, so the
//      joined layer is the same in every image; it leaves room in a small
//      budget for more shared layers (a corpus of 68 images at budget 20:
//      1.11× the ideal download, without joining 1.28×). Not without data;
//   4. merge rating = popularity of the layer's first path × layer size
//      (joined layers: the sum, and the least popular path counts as the
//      layer's popularity);
//   5. when there are more layers than the budget, the budget − 1 layers
//      worth most stay alone and the rest become one layer (ratings add
//      up). A layer's worth is its size times its popularity counted up to
//      the popular threshold: a path that 100 packages use is in nearly
//      every image already, so a tiny library that 40 000 use is worth less
//      alone than a big one that 300 use. ../shared/LAYERING.md merges the
//      two lowest-rated layers instead, again and again; that makes several
//      layers of paths that only this image has together, each downloaded
//      again by every other image that has most of them (a corpus of 68
//      images at budget 20: 1.73× the ideal download, one merged layer
//      1.28× before joining; tests/bench/layering.py). Within the budget
//      nothing merges; where nothing joins, the result is LAYERING.md's;
//   6. manifest order: highest rating first, so the layers most likely shared
//      come first.
//
// That needs popularity data (`nixery popcount`). Without it, a path shared
// by the packages of one image but not of another lands in different
// layers, and few layers are shared. The `size` strategy needs no data;
// every decision depends on the store paths alone:
//
//   1. if the closure fits the budget: one layer per store path (the ideal);
//   2. otherwise the budget − 1 biggest paths alone and the rest in one
//      layer, the leftover. The bytes that matter are in the big paths, and
//      a path alone is shared by every image that has it. (Cutting the
//      leftover into chunks where a name's hash has enough trailing zero
//      bits shared no better: a chunk is shared only by images that have
//      exactly its paths.)
//   3. an image of several packages whose closure does not fit starts from
//      the leftover layer the image of one of its packages alone has (the
//      package whose leftover is biggest; ties by store path), and groups
//      its other paths as in 2 in the rest of the budget. A package's
//      closure is the same in every image, so its leftover is too. At a
//      budget of 4, with git's closure g1 > g2 > g3 > g4 > g5 (by size) and
//      htop's h1 > h2:
//
//        git        g1 | g2 | g3 | {g4 g5}          (its leftover: g4, g5)
//        git/htop   {g4 g5} | g1 | g2 | {g3 h1 h2}  (git's leftover again)
//
//      (a corpus of 68 images at budget 20: 1.28× the ideal download
//      without this step, 1.19× with it). The popularity strategy does not
//      do this: it would change LAYERING.md's worked example.
//
// A layer's identity for caching is its sorted list of store paths. Every
// tie is broken by the smallest store path, so the result is deterministic:
// the same closure, data, strategy and budget give the same layers on every
// machine. Pure: no I/O.
#pragma once

#include "core/closure_graph.hpp"
#include "core/layering.hpp"
#include "core/popularity.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace nixery {

inline constexpr std::uint64_t k_big_threshold = 100'000'000; // bytes of NAR
inline constexpr std::uint64_t k_popular_threshold = 100;
inline constexpr std::size_t k_default_layer_budget = 94;
inline constexpr std::uint64_t k_join_max_size = 4'000'000; // bytes of NAR

struct Layer {
    std::vector<std::string> paths; // sorted
    std::uint64_t size = 0;         // sum of NAR sizes
    std::uint64_t merge_rating = 0; // size strategy: the size
};

// Layers in manifest order. A budget of 0 is treated as 1. Paths that the
// roots do not reach are left out; roots missing from the graph are ignored.
std::vector<Layer> group_layers(const ClosureGraph& graph, const Popularity& popularity,
                                std::size_t budget = k_default_layer_budget,
                                LayeringStrategy strategy = LayeringStrategy::popularity);

// {"layers":[{"paths":[…],"size":N,"mergeRating":R},…]}
std::string layers_to_json(const std::vector<Layer>& layers);

} // namespace nixery
