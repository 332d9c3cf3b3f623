// Tar headers for layers, written by hand rather than through libarchive so
// that a name is bytes and nothing else: no conversion through the process
// locale (libarchive refuses non-ASCII names in a C locale, and names that
// are not UTF-8 in any locale), and the same bytes on every machine.
//
// The format is POSIX pax (ustar headers, with an extended header only when
// a field does not fit): names up to 100 bytes, or splittable into a
// 155-byte prefix and a 100-byte name at a '/', go into the ustar fields as
// they are; longer names, link targets over 100 bytes and sizes of 8 GiB or
// more go into a pax "x" header (path, linkpath, size), with
// "hdrcharset=BINARY" when the bytes are not UTF-8, as POSIX asks. Readers:
// GNU tar, bsdtar, Go's archive/tar (Docker, containerd, skopeo, umoci).
// Spec: https://pubs.opengroup.org/onlinepubs/9699919799/utilities/pax.html
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <sys/types.h>

namespace nixery {

inline constexpr std::size_t k_tar_block = 512;

enum class TarType : char { file = '0', hardlink = '1', symlink = '2', directory = '5' };

struct TarHeader {
    std::string_view path; // relative, without a trailing '/'
    TarType type = TarType::file;
    mode_t mode = 0644;
    std::uint64_t size = 0;  // content bytes (files only)
    std::string_view link;   // symlink or hard link target
    std::uint64_t mtime = 1; // what Nix sets in the store
};

// The header blocks of one entry (a pax extended header first when needed).
// uid and gid 0, no user or group names. The content follows, padded with
// zeros to a multiple of k_tar_block (tar_padding).
std::string tar_header(const TarHeader& header);

std::size_t tar_padding(std::uint64_t size);

// The end of an archive: two zero blocks.
std::string_view tar_end();

} // namespace nixery
