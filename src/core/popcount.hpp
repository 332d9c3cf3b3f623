// Popularity counts for a package set: for each store path name
// ("glibc-2.40-66"), how many packages have it in their runtime closure,
// not counting the package itself. This is the data NIX_POPULARITY_URL
// feeds to layering (see popularity.hpp). Pure: no I/O.
#pragma once

#include "core/closure_graph.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace nixery {

// `packages` are store paths of the graph (the package set's outputs);
// a package counts each name in its closure once.
std::map<std::string, std::uint64_t> count_popularity(const ClosureGraph& graph,
                                                      const std::vector<std::string>& packages);

// {"name": count, …} with names sorted.
std::string popularity_json(const std::map<std::string, std::uint64_t>& counts);

} // namespace nixery
