#include "core/cache_keys.hpp"
#include "core/image.hpp"
#include "util/sha256.hpp"

#include <doctest/doctest.h>

using namespace nixery;

namespace {

// A key of `kind` as computed before layers could be zstd, with nothing
// added for gzip.
std::string key_before_zstd(std::string_view kind, const std::vector<std::string>& fields) {
    std::string data = std::string(kind) + std::string(1, '\0');
    for (const auto& f : fields) {
        data += f + std::string(1, '\0');
    }
    return sha256_hex(data);
}

} // namespace

TEST_SUITE_BEGIN("core");

TEST_CASE("layer_key and top_layer_key") {
    const std::vector<std::string> paths = {"/nix/store/aaaa-a", "/nix/store/bbbb-b"};
    SUBCASE("gzip keys have nothing added for the compression") {
        // layer-v2: hard link entries with their file's mode.
        CHECK(layer_key(paths) == key_before_zstd("layer-v2", paths));
        CHECK(layer_key(paths, LayerCompression::gzip) == layer_key(paths));
        CHECK(top_layer_key(paths) == key_before_zstd("top-v1", paths));
    }
    SUBCASE("a layer is cached per compression") {
        CHECK(layer_key(paths, LayerCompression::zstd) != layer_key(paths));
        CHECK(top_layer_key(paths, LayerCompression::zstd) != top_layer_key(paths));
        CHECK(layer_key(paths, LayerCompression::zstd) !=
              top_layer_key(paths, LayerCompression::zstd));
    }
}

TEST_CASE("image_key: what the layers of the image depend on") {
    const auto image = parse_image_name("shell/hello");
    const auto key = image_key("rev", image, "chunks:1", LayerCompression::gzip);
    CHECK(key ==
          image_key("rev", parse_image_name("shell/hello"), "chunks:1", LayerCompression::gzip));
    CHECK(key != image_key("rev2", image, "chunks:1", LayerCompression::gzip));
    CHECK(key != image_key("rev", image, "popularity/3:abc", LayerCompression::gzip));
    CHECK(key != image_key("rev", image, "chunks:1", LayerCompression::zstd));
}

TEST_CASE("closure_key") {
    const std::vector<std::string> out = {"/nix/store/aaaa-a"};
    // An image is cached per compression of its OCI layers.
    CHECK(closure_key(out, Arch::amd64, false, "pop", 94, "prov", LayerCompression::zstd) !=
          closure_key(out, Arch::amd64, false, "pop", 94, "prov"));
    CHECK(closure_key(out, Arch::amd64, false, "pop", 94, "prov", LayerCompression::gzip) ==
          closure_key(out, Arch::amd64, false, "pop", 94, "prov"));
}

TEST_CASE("cache_key_settings: what changed since the last start") {
    const auto gzip = cache_key_settings("chunks:1", LayerCompression::gzip);
    CHECK(gzip.find("key versions: image-v3 closure-v3 layer-v2 top-v1\n") != std::string::npos);
    CHECK(changed_cache_key_settings(gzip, gzip).empty());
    CHECK(changed_cache_key_settings(
              gzip, cache_key_settings("popularity/3:ab", LayerCompression::zstd)) ==
          std::vector<std::string>{"layering: chunks:1 -> popularity/3:ab",
                                   "layer compression: gzip -> zstd"});
    // An older release's key versions, and a setting it did not keep.
    CHECK(changed_cache_key_settings("key versions: image-v2 closure-v3 layer-v1 top-v1\n"
                                     "layering: chunks:1\n",
                                     gzip) ==
          std::vector<std::string>{
              "key versions: image-v2 closure-v3 layer-v1 top-v1 -> image-v3 closure-v3 "
              "layer-v2 top-v1",
              "layer compression: (none) -> gzip"});
}

TEST_SUITE_END();
