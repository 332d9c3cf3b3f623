// The top layer that makes an image usable: the union of the requested
// packages' top-level trees as symlinks into /nix/store (real directories,
// files and symlinks linked one by one, as lndir does, so /bin/hello works and
// /etc stays writable), plus /tmp, /usr/bin/env, and a minimal /etc/passwd
// and /etc/group when no package provides them. Where packages collide, the
// earlier package wins.
#pragma once

#include "pack/layer_writer.hpp"

#include <map>
#include <string>
#include <vector>

namespace nixery {

struct TopEntry {
    enum class Kind { directory, symlink, file } kind = Kind::directory;
    mode_t mode = 0755;
    std::string target; // symlink target or file content
};

// Relative paths ("bin/hello") in tar order: parents before children.
using TopLayerPlan = std::map<std::string, TopEntry>;

// Reads the packages' trees (absolute store paths, in precedence order).
Result<TopLayerPlan> plan_top_layer(const std::vector<std::string>& package_paths);

Result<void> add_top_layer(LayerWriter& writer, const TopLayerPlan& plan);

} // namespace nixery
