// `nixery layers --graph FILE [--popularity FILE] [--budget N]`: prints how
// a closure (Nix's exportReferencesGraph JSON) is grouped into layers, in
// manifest order. Works on files alone: no configuration, no Nix.
#pragma once

#include <string>
#include <vector>

namespace nixery {

// Returns the exit code: 0 printed, 1 unreadable input, 2 bad arguments.
int layers_command(const std::vector<std::string>& args);

} // namespace nixery
