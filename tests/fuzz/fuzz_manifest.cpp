// Fuzzes the reading of stored JSON documents (manifests, indexes, configs
// another instance stored) and, as a round trip, the writing of manifests:
// a manifest written for N layers reads back with N layers and its type.
#include "core/manifest.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

using namespace nixery;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    (void)document_media_type(input);
    (void)manifest_layer_count(input);
    (void)manifest_annotations_of(input);

    // The input's lines as layer digests and descriptions.
    std::vector<LayerDescriptor> layers;
    std::size_t start = 0;
    while (start <= input.size() && layers.size() < 64) {
        auto nl = input.find('\n', start);
        if (nl == std::string_view::npos) {
            nl = input.size();
        }
        const auto line = std::string(input.substr(start, nl - start));
        layers.push_back({line, line, line.size(), line});
        start = nl + 1;
    }
    const auto format = size % 2 ? ManifestFormat::oci : ManifestFormat::docker;
    const auto manifest = manifest_json(format, input.substr(0, 71), size, layers, {});
    if (manifest_layer_count(manifest) != layers.size() ||
        document_media_type(manifest) != manifest_media_type(format)) {
        std::abort();
    }
    // An index of the lines as digests reads back as an index.
    std::vector<IndexEntry> entries;
    Labels annotations;
    for (const auto& l : layers) {
        entries.push_back({l.size % 2 ? Arch::arm64 : Arch::amd64, l.digest, l.size});
        annotations.emplace_back(l.digest, l.created_by);
    }
    const auto index = index_json(format, entries, annotations);
    if (document_media_type(index) != index_media_type(format)) {
        std::abort();
    }
    (void)manifest_annotations_of(index);
    ImageConfig config;
    config.layers = layers;
    config.bash = size % 3 == 0;
    const auto written = config_json(config);
    if (written.empty()) {
        std::abort();
    }
    return 0;
}
