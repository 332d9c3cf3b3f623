// An image's provenance: which package set it came from, which packages were
// asked for and which store paths each layer holds, as the config's
// `Labels` and the OCI manifest's `annotations`. Only what the image's bytes
// already depend on goes in (no instance name, host or clock), so two
// instances building the same image from the same source write the same
// documents. Pure: no I/O.
//
// Keys: https://github.com/opencontainers/image-spec/blob/main/annotations.md
// for org.opencontainers.image.*; org.nixos.nixery.* are this registry's.
#pragma once

#include "core/image.hpp"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nixery {

// What a package source resolved, as people may see it: never a URL's
// credentials (user info or query), never a path of this server's state.
struct SourceProvenance {
    std::string type;     // "path", "git" or "channel"
    std::string location; // the directory, the repository URL or the tarball URL
    std::string channel;  // the channel name or commit (channel only)
    std::string revision; // the git commit; a channel's nixpkgs commit when known
    std::string hash;     // NAR hash of the package set ("sha256-…", SRI) when known
};

struct ImageProvenance {
    std::string name; // canonical_image_name(): "shell/hello" for "hello/…"
    // Package name → output path: the requested packages in request order,
    // then the implicit ones the package set has.
    std::vector<std::pair<std::string, std::string>> packages;
    SourceProvenance source;
};

// The image's name in the one spelling every name of the same image shares
// (the same architecture and packages, core/cache_keys.hpp): "arm64/" for
// arm64, "shell/" when every shell package is in it (those then left out),
// and the other packages sorted: "hello/shell/app" (a package "shell") is
// "app/hello/shell", "shell/hello/coreutils" is "shell/hello".
std::string canonical_image_name(const Image& image);

// Key → value, sorted by key (as they are written).
using Labels = std::vector<std::pair<std::string, std::string>>;

namespace label {
inline constexpr std::string_view created = "org.opencontainers.image.created";
inline constexpr std::string_view title = "org.opencontainers.image.title";
inline constexpr std::string_view source = "org.opencontainers.image.source";
inline constexpr std::string_view revision = "org.opencontainers.image.revision";
inline constexpr std::string_view packages = "org.nixos.nixery.packages";
inline constexpr std::string_view layers = "org.nixos.nixery.layers";
inline constexpr std::string_view source_type = "org.nixos.nixery.source.type";
inline constexpr std::string_view source_location = "org.nixos.nixery.source.location";
inline constexpr std::string_view source_channel = "org.nixos.nixery.source.channel";
inline constexpr std::string_view source_revision = "org.nixos.nixery.source.revision";
inline constexpr std::string_view source_hash = "org.nixos.nixery.source.hash";
} // namespace label

// The OCI manifest's annotations: title, created (fixed), the source's keys
// and the packages as a JSON object of name → output path. Empty members of
// the source are left out; org.opencontainers.image.source and .revision only
// where they mean what OCI says (a repository or tarball URL, a commit).
Labels manifest_annotations(const ImageProvenance& image);

// The annotations of an index of one image's platforms: those every
// platform's manifest has with the same value (the source, the created
// time; not the packages, whose output paths differ by platform), and the
// title `title` (the name without "arm64/"), sorted by key.
Labels index_annotations(const std::vector<Labels>& platforms, std::string_view title);

// The config's Labels: the annotations and org.nixos.nixery.layers, a JSON
// array with one array per layer, bottom first (as rootfs.diff_ids), of the
// store path base names the layer holds ("<hash>-<name>"; the top layer of
// symlinks to the packages holds none, so its entry is empty).
Labels config_labels(const ImageProvenance& image,
                     const std::vector<std::vector<std::string>>& layer_store_paths);

// A digest of everything the labels of `image` depend on besides the layers
// (which follow from the closure), for the closure key.
std::string provenance_digest(const ImageProvenance& image);

// `url` without user info ("user:secret@"), query and fragment, where
// credentials and tokens travel; a local path or an scp-like git address
// ("git@host:repo") as it is.
std::string url_without_credentials(std::string_view url);

// Whether a package source's location is on this machine: a path, or a
// file:// URL; not a network URL or an scp-like "host:path" (git's rule: a
// ':' before any '/').
bool is_local_location(std::string_view location);

// A SourceProvenance as one JSON object and back (the start page's record
// of the current revision); an empty `type` when `json` is not such an
// object.
std::string provenance_json(const SourceProvenance& source);
SourceProvenance parse_provenance_json(std::string_view json);

} // namespace nixery
