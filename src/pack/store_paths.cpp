#include "pack/store_paths.hpp"

#include "util/files.hpp"
#include "util/sha256.hpp"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <map>
#include <sys/stat.h>
#include <tuple>
#include <unistd.h>

namespace nixery {

namespace {

// What packing needs of an entry, kept for every entry before the first is
// written (to know which sizes occur twice): small, as a store path can hold
// hundreds of thousands of files. Its absolute path is the store directory
// and `rel` without "nix/store".
struct FsEntry {
    std::string rel; // inside the image: "nix/store/…"
    mode_t mode = 0;
    off_t size = 0;
    dev_t dev = 0;
    ino_t ino = 0;
};

Result<std::string> read_link(const std::string& path) {
    std::string buf(4096, '\0');
    const auto n = ::readlink(path.c_str(), buf.data(), buf.size());
    if (n < 0) {
        return fail("readlink \"" + path + "\" failed: " + errno_text(errno));
    }
    buf.resize(static_cast<std::size_t>(n));
    return buf;
}

Result<void> collect(const std::string& abs, std::string rel, std::vector<FsEntry>& out) {
    struct stat st {};
    if (::lstat(abs.c_str(), &st) != 0) {
        return fail("lstat \"" + abs + "\" failed: " + errno_text(errno));
    }
    const auto type = st.st_mode & S_IFMT;
    if (type != S_IFLNK && type != S_IFDIR && type != S_IFREG) {
        return fail("pack \"" + abs + "\" failed: not a file, directory or symlink");
    }
    out.push_back({std::move(rel), st.st_mode, st.st_size, st.st_dev, st.st_ino});
    if (type == S_IFDIR) {
        TRY_ASSIGN(const auto children, sorted_dir_entries(abs));
        const auto dir_rel = out.back().rel + "/";
        for (const auto& c : children) {
            TRY(collect(abs + "/" + c, dir_rel + c, out));
        }
    }
    return {};
}

// Runtimes apply a layer's ".wh.*" entries as OCI whiteouts and never create
// them (image-spec layer.md, "Whiteouts"): such a file cannot be the target
// of a hard link, or the link fails to unpack.
bool whiteout_name(std::string_view rel) {
    const auto slash = rel.rfind('/');
    return rel.substr(slash == std::string_view::npos ? 0 : slash + 1).starts_with(".wh.");
}

Result<std::string> content_hash(const std::string& abs) {
    UniqueFd fd(::open(abs.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) {
        return fail("open \"" + abs + "\" failed: " + errno_text(errno));
    }
    Sha256 h;
    TRY(read_chunks(fd.get(), abs, [&](std::string_view piece) -> Result<void> {
        h.update(piece.data(), piece.size());
        return {};
    }));
    return h.finish_hex();
}

} // namespace

Result<void> add_store_paths(LayerWriter& writer, std::vector<std::string> store_paths,
                             std::string_view store_dir) {
    std::sort(store_paths.begin(), store_paths.end());
    const std::string prefix = std::string(store_dir) + "/";
    std::vector<FsEntry> entries;
    for (const auto& p : store_paths) {
        const auto name = std::string_view(p).substr(std::min(p.size(), prefix.size()));
        if (p.compare(0, prefix.size(), prefix) != 0 || name.empty() ||
            name.find('/') != std::string_view::npos || name == "." || name == "..") {
            return fail("pack \"" + p + "\" failed: not a store path");
        }
        TRY(collect(p, "nix/store/" + std::string(name), entries));
    }

    // Only files whose size occurs more than once can have a twin.
    std::map<off_t, int> sizes;
    for (const auto& e : entries) {
        if (S_ISREG(e.mode) && e.size > 0) {
            ++sizes[e.size];
        }
    }

    TRY(writer.add_directory("nix", 0755));
    TRY(writer.add_directory("nix/store", 0755));
    constexpr std::string_view k_image_store = "nix/store/";
    std::map<std::pair<dev_t, ino_t>, std::string> hash_of_inode;
    // Twins must agree on mode too: a link shares the inode and so the mode.
    std::map<std::tuple<off_t, mode_t, std::string>, std::string> first_with_content;
    for (const auto& e : entries) {
        const auto abs = prefix + e.rel.substr(k_image_store.size());
        const auto perm = e.mode & 07777;
        if (S_ISDIR(e.mode)) {
            TRY(writer.add_directory(e.rel, perm));
            continue;
        }
        if (S_ISLNK(e.mode)) {
            TRY_ASSIGN(const auto target, read_link(abs));
            TRY(writer.add_symlink(e.rel, target));
            continue;
        }
        if (sizes[e.size] > 1 && !whiteout_name(e.rel)) {
            const auto inode = std::make_pair(e.dev, e.ino);
            auto known = hash_of_inode.find(inode);
            if (known == hash_of_inode.end()) {
                TRY_ASSIGN(auto hash, content_hash(abs));
                known = hash_of_inode.emplace(inode, std::move(hash)).first;
            }
            const auto key = std::make_tuple(e.size, perm, known->second);
            const auto twin = first_with_content.find(key);
            if (twin != first_with_content.end()) {
                TRY(writer.add_hardlink(e.rel, twin->second, perm));
                continue;
            }
            first_with_content.emplace(key, e.rel);
        }
        UniqueFd fd(::open(abs.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
        if (!fd) {
            return fail("open \"" + abs + "\" failed: " + errno_text(errno));
        }
        TRY(writer.add_file(e.rel, perm, fd.get(), static_cast<std::uint64_t>(e.size), abs));
    }
    return {};
}

} // namespace nixery
