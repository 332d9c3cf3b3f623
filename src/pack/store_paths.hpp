// Packing store paths into a layer: each path's tree under "nix/store/…",
// entries in a fixed order (depth first, names sorted bytewise), modes as in
// the store. Files with identical content become hard links to the first of
// them: the store may or may not have been optimised (hard-linked) on a given
// machine, and deciding by content keeps layers byte-identical everywhere.
#pragma once

#include "pack/layer_writer.hpp"

#include <string>
#include <vector>

namespace nixery {

// `store_paths` are absolute paths directly inside `store_dir`; they are
// packed in sorted order under "nix/store/". Fails if a path is missing or
// holds something a store cannot (a device, a fifo).
Result<void> add_store_paths(LayerWriter& writer, std::vector<std::string> store_paths,
                             std::string_view store_dir = "/nix/store");

} // namespace nixery
