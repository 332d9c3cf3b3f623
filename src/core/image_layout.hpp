// Images as files: the documents of an OCI image layout
// (https://github.com/opencontainers/image-spec/blob/main/image-layout.md)
// and of the tarball `docker save` writes and `docker load` reads, and the
// reading of a manifest or an index into what it references, so a writer
// can copy an image by walking it without knowing which kind it got. Pure:
// the files are written by src/layout.
#pragma once

#include "util/result.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nixery {

// A reference to a blob or a child manifest, as manifests and indexes hold
// them. `digest` is always "sha256:" and 64 lowercase hex digits: it names a
// file (layout_blob_path).
struct Descriptor {
    std::string media_type;
    std::string digest;
    std::uint64_t size = 0;
    // An index entry's platform ("linux", "arm64", "v8"); empty elsewhere.
    std::string os;
    std::string architecture;
    std::string variant;
};

enum class DocumentKind {
    manifest, // a config and layers
    index,    // an OCI image index or a Docker manifest list: child manifests
};

struct ImageDocument {
    DocumentKind kind = DocumentKind::manifest;
    Descriptor config;               // a manifest's
    std::vector<Descriptor> layers;  // a manifest's, bottom first
    std::vector<Descriptor> entries; // an index's manifests
};

// Reads a manifest or an index, Docker or OCI. The kind comes from its
// "mediaType", or, for an OCI document without one, from whether it has
// "manifests" or "config". Errors say what is wrong (not JSON, no config,
// a digest that is not sha256:<64 hex>, ...): a document read from storage
// is checked before its digests become file names.
Result<ImageDocument> parse_image_document(std::string_view json);

// Whether `media_type` names an image index or a manifest list.
bool is_index_media_type(std::string_view media_type);

// "blobs/sha256/<hex>" for a digest parse_image_document accepted.
std::string layout_blob_path(std::string_view digest);

// The content of a layout's "oci-layout" file.
std::string oci_layout_json();

// The annotation that names an image in a layout's index.json (what
// `skopeo copy oci:DIR:NAME`, `umoci unpack --image DIR:NAME` look up).
inline constexpr std::string_view k_ref_name_annotation = "org.opencontainers.image.ref.name";

// A layout's "index.json" with `root` named `ref_name`. `existing` is the
// index.json already in the layout (empty: none): its entries are kept,
// except one with the same name, which `root` replaces, as skopeo does when
// it copies into a layout. An error when `existing` is not an index.
Result<std::string> layout_index_json(const Descriptor& root, std::string_view ref_name,
                                      std::string_view existing = {});

// The "manifest.json" of a `docker save` tarball holding one image whose
// config and layers are stored at layout_blob_path(digest), tagged
// `repo_tag` ("name:tag"). Docker 20.10 and later load this format.
std::string docker_archive_manifest_json(const Descriptor& config,
                                         const std::vector<Descriptor>& layers,
                                         std::string_view repo_tag);

// The entry of `index` for linux on `architecture` (OCI names: "amd64",
// "arm64"); nullopt when it has none.
std::optional<Descriptor> platform_entry(const ImageDocument& index, std::string_view architecture);

} // namespace nixery
