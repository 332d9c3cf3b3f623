// An image of several platforms (NIXERY_PLATFORMS): each platform's image is
// the single-platform image of that architecture, built as a job of its own
// (registry/registry.cpp); here their manifests become one index, composed
// from the manifests alone (core/manifest.hpp), so every instance and `nixery
// build` write the same bytes for the same images.
#include "builder/builder.hpp"
#include "builder/packing.hpp"
#include "builder/records.hpp"
#include "builder/server_fault.hpp"
#include "core/platform.hpp"
#include "util/sha256.hpp"

#include <ctime>

namespace nixery {

Failure platform_failure(Failure failure, Arch arch) {
    failure.message = platform_name(arch) + ": " + failure.message;
    return failure;
}

Result<ServedManifest, Failure> Builder::serve_index(const std::vector<Found>& found,
                                                     std::string_view name, ManifestFormat format) {
    const bool oci = format == ManifestFormat::oci;
    std::vector<IndexEntry> entries;
    std::vector<std::string> children;
    std::vector<Labels> annotations;
    for (const auto& f : found) {
        const auto& manifest = oci ? f.record.oci_manifest : f.record.docker_manifest;
        const auto& digest = oci ? f.record.oci_digest : f.record.docker_digest;
        entries.push_back({f.arch, digest, manifest.size()});
        children.push_back(digest);
        // The Docker format has no annotations: the OCI manifest's hold
        // the same provenance.
        annotations.push_back(manifest_annotations_of(f.record.oci_manifest));
    }
    const auto title = canonical_image_name(parse_image_name(name));
    ServedManifest served{index_json(format, entries, index_annotations(annotations, title)),
                          std::string(index_media_type(format)),
                          {}};
    served.digest = sha256_digest(served.body);
    // Stored on every request that reaches the pool (nginx answers the
    // others), so an index that gc on an instance sharing the storage
    // removed is stored again: an existence check when it is there.
    // Children first: gc keeps an index only while they are recorded, in
    // this instance's database and, for the others', in a shared record.
    const auto record_key = index_record_key(served.digest);
    const auto shared = m_s.storage.exists(record_key);
    if (!shared) {
        return unexpected(server_fault(shared.error(), name));
    }
    if (!*shared) {
        if (auto r = m_s.storage.put(record_key, encode_index_record(children), "application/json");
            !r) {
            return unexpected(server_fault(r.error(), name));
        }
    }
    const auto listed = m_s.cache.index_children(served.digest);
    if (!listed) {
        return unexpected(server_fault(listed.error(), name));
    }
    if (listed->empty()) {
        if (auto r = m_s.cache.record_index(served.digest, children); !r) {
            return unexpected(server_fault(r.error(), name));
        }
    }
    const auto now = static_cast<std::int64_t>(std::time(nullptr));
    if (auto r = store_document(m_s.storage, m_s.cache, served.body, served.media_type, now); !r) {
        return unexpected(server_fault(r.error(), name));
    }
    return served;
}

} // namespace nixery
