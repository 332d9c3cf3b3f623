// The runtime closure of an image as Nix describes it: store paths with NAR
// sizes and references, plus the roots (the requested packages). The JSON
// form is what Nix writes for a derivation with __structuredAttrs and
// exportReferencesGraph.graph (../shared/LAYERING.md). Pure: no I/O.
#pragma once

#include "util/result.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace nixery {

struct StorePathInfo {
    std::string path;
    std::uint64_t nar_size = 0;
    std::vector<std::string> references; // may include the path itself
};

struct ClosureGraph {
    std::vector<std::string> roots;
    std::vector<StorePathInfo> paths;
};

// Parses {"exportReferencesGraph":{"graph":[roots…]},"graph":[{path,narSize,
// references,…}…]}. Without the exportReferencesGraph part, the roots are the
// paths nothing else references. Errors name what is missing or malformed.
Result<ClosureGraph> parse_references_graph(std::string_view json);

// "/nix/store/<hash>-glibc-2.40-66" → "glibc-2.40-66" (unchanged if not a
// store path).
std::string_view store_path_name(std::string_view path);

} // namespace nixery
