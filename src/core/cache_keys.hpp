// The identities the build cache is keyed by. Each key hashes exactly the
// inputs that determine what it names, with a version prefix to bump when
// the way those bytes are produced changes. Pure: no I/O.
//
//   image key   (source revision, architecture, packages)  → an evaluation
//   closure key (output paths, architecture, Cmd, popularity data, budget,
//                provenance: the labels but the layers, OCI layer
//                compression)                              → an image's bytes
//   layer key   (sorted store paths, compression)          → a layer blob
//   top key     (package output paths, in precedence order, compression)
//                                                          → the top layer
//
// With gzip, layer and top keys have nothing added for the compression (as
// before zstd existed); zstd adds a suffix.
#pragma once

#include "core/image.hpp"
#include "core/manifest.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace nixery {

// An image's key covers what grouping and packing its layers depends on
// (`layering`: layering_identity(), and the compression), so a change of
// NIXERY_LAYERING, its data or NIXERY_LAYER_COMPRESSION builds the image
// anew on its next pull instead of serving the one cached for the tag.
std::string image_key(std::string_view revision, const Image& image, std::string_view layering,
                      LayerCompression compression);
std::string closure_key(const std::vector<std::string>& out_paths, Arch arch, bool bash,
                        std::string_view popularity_digest, std::size_t budget,
                        std::string_view provenance_digest,
                        LayerCompression compression = LayerCompression::gzip);
std::string layer_key(const std::vector<std::string>& sorted_store_paths,
                      LayerCompression compression = LayerCompression::gzip);
std::string top_layer_key(const std::vector<std::string>& package_paths,
                          LayerCompression compression = LayerCompression::gzip);

// What every cached image's keys depend on besides the image itself, one
// "name: value" line each: this release's key versions, the layering
// (`layering_identity()`: strategy and popularity data) and the layer
// compression. `serve` keeps it from one start to the next, so that a change
// that builds every image anew on its next pull is said when it starts.
std::string cache_key_settings(std::string_view layering, LayerCompression compression);
// The settings of `now` that differ from `before` (both from
// cache_key_settings), each as "name: old -> new"; empty when none did.
std::vector<std::string> changed_cache_key_settings(std::string_view before, std::string_view now);

} // namespace nixery
