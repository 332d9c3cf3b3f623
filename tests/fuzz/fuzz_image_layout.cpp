// Fuzzes the reading of the documents `nixery build` walks (manifests and
// indexes from storage) and of a layout's index.json that a user's
// directory holds: never a crash, every digest accepted names a file under
// blobs/sha256, and an index.json that was accepted takes another image,
// which comes last.
#include "core/image_layout.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>

using namespace nixery;

namespace {

void check_path(const Descriptor& d) {
    const auto path = layout_blob_path(d.digest);
    if (path.size() != 13 + 64 || path.rfind("blobs/sha256/", 0) != 0 ||
        path.find_first_not_of("0123456789abcdef", 13) != std::string::npos) {
        std::abort();
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    if (const auto doc = parse_image_document(input)) {
        if (doc->kind == DocumentKind::manifest) {
            check_path(doc->config);
        }
        for (const auto& l : doc->layers) {
            check_path(l);
        }
        for (const auto& e : doc->entries) {
            check_path(e);
        }
        (void)platform_entry(*doc, "amd64");
    }
    const Descriptor root{"application/vnd.oci.image.manifest.v1+json",
                          "sha256:" + std::string(64, 'a'),
                          1,
                          {},
                          {},
                          {}};
    if (const auto index = layout_index_json(root, "fuzz", input)) {
        // Entries kept from the input may not be descriptors, so reading
        // it back may fail; when it does not, the new image comes last.
        const auto again = parse_image_document(*index);
        if (again && (again->kind != DocumentKind::index || again->entries.empty() ||
                      again->entries.back().digest != root.digest)) {
            std::abort();
        }
    }
    return 0;
}
