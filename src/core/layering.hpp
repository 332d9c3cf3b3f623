// The layering strategies an instance can choose (NIXERY_LAYERING), apart
// from the grouping itself (layers.hpp), so that the configuration can name
// one without the layering's constants. Pure: no I/O.
#pragma once

#include "core/popularity.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace nixery {

enum class LayeringStrategy {
    automatic,  // popularity when there is popularity data, size when there is none
    popularity, // dominators and merge ratings (../shared/LAYERING.md)
    size,       // needs no data: the biggest paths alone, the rest in one layer,
                // which an image of several packages takes from one package
};

// "auto", "popularity" or "size" ("chunks", its former name, too); nullopt
// for anything else.
std::optional<LayeringStrategy> parse_layering_strategy(std::string_view name);
std::string_view to_string(LayeringStrategy strategy);
// The strategy `automatic` stands for with this data.
LayeringStrategy effective_strategy(LayeringStrategy configured, const Popularity& popularity);
// What the layers depend on besides the closure and the budget (the
// strategy, and the data it reads), for cache keys.
std::string layering_identity(LayeringStrategy configured, const Popularity& popularity);

} // namespace nixery
