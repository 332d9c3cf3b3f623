// Image config and manifest documents, in the Docker image manifest v2
// schema 2 and the OCI image manifest formats, and choosing between them from
// a request's Accept headers. Output bytes are deterministic: the same inputs
// give the same digests. Pure: no I/O.
//
// Specs: https://github.com/opencontainers/image-spec/blob/main/manifest.md,
// https://github.com/opencontainers/image-spec/blob/main/config.md and
// https://distribution.github.io/distribution/spec/manifest-v2-2/
#pragma once

#include "core/image.hpp"
#include "core/provenance.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nixery {

namespace media_type {
inline constexpr std::string_view docker_manifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view docker_config = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view docker_layer =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr std::string_view oci_manifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view docker_manifest_list =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view oci_index = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view oci_config = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view oci_layer = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view oci_layer_zstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view layer_blob = "application/octet-stream";
} // namespace media_type

enum class ManifestFormat { docker, oci };

// How a layer blob is compressed (NIXERY_LAYER_COMPRESSION). The Docker
// manifest format has no zstd layer type (older Docker engines cannot read
// zstd), so Docker-format manifests always reference gzip layers.
enum class LayerCompression { gzip, zstd };

// "gzip" or "zstd", as NIXERY_LAYER_COMPRESSION spells it.
std::string_view to_string(LayerCompression compression);

std::string_view manifest_media_type(ManifestFormat format);
std::string_view config_media_type(ManifestFormat format);
// The type of a layer compressed with `compression` in a manifest of
// `format`; zstd has only the OCI type.
std::string_view layer_media_type(ManifestFormat format,
                                  LayerCompression compression = LayerCompression::gzip);

// OCI only when some Accept value names an OCI type and none names the
// Docker manifest; Docker otherwise (also with no Accept at all). Each
// element is one Accept header, possibly a comma-separated list.
//
// With zstd layers, OCI also when an OCI type comes before the Docker
// manifest: containers/image (podman, skopeo, buildah, CRI-O) lists OCI first
// and reads zstd; containerd lists the Docker manifest first and so keeps
// gzip layers, which every version of it reads. The Docker engine's order
// means nothing (it changes from pull to pull, and Docker before 23 reads no
// zstd): a client that also accepts `application/json`, as it does, keeps
// the Docker manifest whatever the order.
ManifestFormat negotiate_format(const std::vector<std::string>& accept_headers,
                                LayerCompression compression = LayerCompression::gzip);

// What a manifest request by tag is answered with: a manifest in `format`,
// or, for an image of several platforms, the index (OCI) or manifest list
// (Docker) of `index`, listing manifests of that format; nullopt when the
// client accepts neither.
struct ManifestChoice {
    ManifestFormat format = ManifestFormat::docker;
    std::optional<ManifestFormat> index;
};

// The format as negotiate_format() picks it, and the index: the list type
// of that format when it is accepted, else the other one when that is.
ManifestChoice negotiate_manifest(const std::vector<std::string>& accept_headers,
                                  LayerCompression compression = LayerCompression::gzip);

// The media type of an index of manifests in `format`: the OCI image index
// or the Docker manifest list.
std::string_view index_media_type(ManifestFormat format);

// Whether `type` is a manifest, an index or a manifest list: what a client
// may fetch from /v2/<name>/manifests/<digest>.
bool is_manifest_media_type(std::string_view type);

struct LayerDescriptor {
    std::string digest;  // "sha256:…" of the compressed blob
    std::string diff_id; // "sha256:…" of the uncompressed tar
    std::uint64_t size = 0;
    std::string created_by; // names the packages in the layer, for `history`
    LayerCompression compression = LayerCompression::gzip;
};

struct ImageConfig {
    Arch arch = Arch::amd64;
    std::vector<LayerDescriptor> layers; // bottom first, as in the manifest
    bool bash = false;                   // bashInteractive is in the image: Cmd ["bash"]
    Labels labels;                       // config.Labels (core/provenance.hpp); none: no member
};

inline constexpr std::string_view k_fixed_created = "1970-01-01T00:00:01Z";

// The config blob (identical for both manifest formats).
std::string config_json(const ImageConfig& config);

// The manifest referencing a config blob (its digest and size) and layers.
// `annotations` go into OCI manifests only (the Docker format has none);
// none: no member.
std::string manifest_json(ManifestFormat format, std::string_view config_digest,
                          std::uint64_t config_size, const std::vector<LayerDescriptor>& layers,
                          const Labels& annotations);

// One manifest of an index: its platform's architecture, its digest and size.
struct IndexEntry {
    Arch arch = Arch::amd64;
    std::string digest;
    std::uint64_t size = 0;
};

// The index (OCI) or manifest list (Docker) of manifests in `format`, each
// with its platform (os, architecture, variant). `annotations` go into the
// OCI index only; none: no member.
std::string index_json(ManifestFormat format, const std::vector<IndexEntry>& entries,
                       const Labels& annotations);

// The annotations of an OCI manifest ("annotations" of `json`); none when it
// has none or is not an object.
Labels manifest_annotations_of(std::string_view json);

// The media type of a stored JSON document, as another instance may have
// stored it: a manifest's or an index's "mediaType", or docker_config for an
// image configuration (an object with a "rootfs" object and no "mediaType",
// stored under that type by the builder); empty for anything else.
std::string document_media_type(std::string_view json);

// The number of entries of a manifest's "layers" array; 0 when `json` has
// none.
std::size_t manifest_layer_count(std::string_view json);

// "nixery: glibc-2.40-66, hello-2.12.1" for store paths (at most `limit` named).
std::string describe_layer(const std::vector<std::string>& store_paths, std::size_t limit = 10);

} // namespace nixery
