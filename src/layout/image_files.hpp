// An image held in storage, written out as files: an OCI image layout
// directory, or a tarball for `docker load`. The image is walked from its
// top document, whatever it is: a manifest gives its config and layers, an
// index (or a Docker manifest list) each child manifest, read from storage
// by digest, and the children's configs and layers. Every blob is streamed
// from storage and its size and digest checked on the way, so a layer of
// any size passes in bounded memory and a damaged blob is never written.
// Knows nothing of how images are built (src/cmd/build.cpp asks the
// builder) and nothing of the documents' JSON (core/image_layout).
#pragma once

#include "storage/backend.hpp"
#include "util/result.hpp"

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace nixery {

// The document a tag names, as the registry serves it.
struct TopDocument {
    std::string body;
    std::string media_type;
    std::string digest; // "sha256:…" of body
};

struct FilesWritten {
    std::size_t blobs_copied = 0;  // read from storage and written
    std::size_t blobs_present = 0; // already in the layout, kept
    std::uint64_t bytes_copied = 0;
};

// Writes `top` and everything it references into the OCI image layout at
// `dir`, naming it `ref_name` (org.opencontainers.image.ref.name) in the
// layout's index.json. `dir` may be absent or empty (a new layout) or an
// OCI image layout already (the image is added, replacing one of the same
// name, and blobs present with the right size are kept, as skopeo does);
// any other non-empty directory is refused. index.json is replaced last and
// atomically: an interrupted write leaves the layout as it was, plus blobs
// (a directory holding only blobs/ is taken as a new layout whose first
// write was interrupted, and the staging files a killed write left there
// go once an hour old). Errors name the blob or file and the cause.
Result<FilesWritten> write_oci_layout(StorageBackend& storage, const TopDocument& top,
                                      std::string_view ref_name, const std::filesystem::path& dir);

// Whether write_oci_layout() may write to `dir` (it checks again), so a
// caller can refuse before a long build: an error says why not.
Result<void> check_layout_target(const std::filesystem::path& dir);

// Whether write_docker_archive() may create `file`: its directory exists.
Result<void> check_archive_target(const std::filesystem::path& file);

// Writes the image `top` names as a tarball that `docker load` reads (the
// format of `docker save`: manifest.json, the config and the layers),
// tagged `repo_tag` ("name:tag"), to `file`, atomically (an existing file
// is replaced; the staging file, ".<file name>.<16 hex>.tmp" beside it,
// is removed if the process is killed, by the next write of the same file
// once an hour old). The archive holds one image: of an index, the manifest for
// linux on `architecture` ("amd64"); an error when it has none.
Result<FilesWritten> write_docker_archive(StorageBackend& storage, const TopDocument& top,
                                          std::string_view architecture, std::string_view repo_tag,
                                          const std::filesystem::path& file);

} // namespace nixery
