// A reproducible layer blob: a tar stream (pack/tar.hpp: names as bytes,
// whatever the locale) compressed with gzip or zstd on several threads
// (pack/compressor.hpp) and written to a file descriptor, with the SHA-256 of
// the tar (the diff_id) and of the compressed stream (the blob digest)
// computed in the same single pass. One tar stream can feed several outputs
// (the gzip and zstd twins of a layer): the files are read and the tar
// hashed once. Memory stays bounded: file contents are streamed in
// fixed-size chunks.
//
// Reproducibility is the caller's order of entries plus what this writer
// fixes: mtime 1 (as in the Nix store), uid/gid 0, no user or group names, no
// extended attributes, a gzip header without timestamp or file name, and
// compressed bytes that do not depend on the number of threads.
#pragma once

#include "core/manifest.hpp"
#include "util/result.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace nixery {

struct PackedLayer {
    std::string digest;  // "sha256:…" of the compressed blob
    std::string diff_id; // "sha256:…" of the uncompressed tar
    std::uint64_t size = 0;
};

struct PackOptions {
    LayerCompression compression = LayerCompression::gzip;
    unsigned threads = 0; // 0: default_pack_threads(); the bytes are the same for any number
};

struct LayerOutput {
    int fd = -1;                // receives the compressed stream
    std::filesystem::path what; // names it in errors
    LayerCompression compression = LayerCompression::gzip;
};

class LayerWriter {
public:
    // The same tar stream into each of `outputs` (at least one), each
    // compressor on `threads` (0: default_pack_threads()).
    static Result<std::unique_ptr<LayerWriter>> open(std::vector<LayerOutput> outputs,
                                                     unsigned threads = 0);
    // One output.
    static Result<std::unique_ptr<LayerWriter>> open(int out_fd, std::filesystem::path what,
                                                     PackOptions options = {});
    ~LayerWriter();
    LayerWriter(const LayerWriter&) = delete;
    LayerWriter& operator=(const LayerWriter&) = delete;

    // Paths are relative to the image root ("nix/store/…", "etc/passwd"),
    // any bytes but NUL, of any length.
    Result<void> add_directory(std::string_view path, mode_t mode);
    Result<void> add_symlink(std::string_view path, std::string_view target);
    // A hard link to `target`, an earlier entry of this layer, with the
    // mode of `target` (the inode's, as GNU tar writes it): Docker and
    // containerd chmod the shared inode to a link entry's mode.
    Result<void> add_hardlink(std::string_view path, std::string_view target, mode_t mode);
    // A regular file whose `size` bytes are read from `fd`.
    Result<void> add_file(std::string_view path, mode_t mode, int fd, std::uint64_t size,
                          const std::filesystem::path& source);
    Result<void> add_file_data(std::string_view path, mode_t mode, std::string_view data);

    // Ends the tar and compressed streams, one PackedLayer per output in
    // their order (the same diff_id); the descriptors are left open.
    Result<std::vector<PackedLayer>> finish();

private:
    struct Impl;
    explicit LayerWriter(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m_impl;
};

} // namespace nixery
