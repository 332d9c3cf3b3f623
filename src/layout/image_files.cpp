#include "layout/image_files.hpp"

#include "core/image_layout.hpp"
#include "pack/tar.hpp"
#include "util/files.hpp"
#include "util/sha256.hpp"

#include <cerrno>
#include <map>
#include <sys/stat.h>
#include <vector>

namespace nixery {

namespace fs = std::filesystem;

namespace {

// An index may name indexes; nothing this registry serves nests deeper.
constexpr int k_max_depth = 4;

// Everything an image consists of, by digest: documents (the top one,
// child manifests) with their bodies, and blobs to stream from storage.
struct ImageParts {
    std::map<std::string, std::string> documents; // digest → body
    std::vector<Descriptor> blobs;                // in walk order, each once

    void add_blob(const Descriptor& d) {
        for (const auto& b : blobs) {
            if (b.digest == d.digest) {
                return;
            }
        }
        blobs.push_back(d);
    }
};

std::string storage_key(std::string_view digest) {
    return blob_key(digest.substr(digest.find(':') + 1));
}

// A small document (a manifest) from storage, checked against its digest.
Result<std::string> fetch_document(StorageBackend& storage, const Descriptor& d) {
    TRY_ASSIGN(auto body, storage.fetch(storage_key(d.digest)));
    if (!body) {
        return fail("manifest " + d.digest + " is missing from storage");
    }
    if (sha256_digest(*body) != d.digest) {
        return fail("manifest " + d.digest + " in storage does not match its digest");
    }
    return std::move(*body);
}

Result<ImageDocument> parse_stored(std::string_view body, std::string_view digest) {
    auto doc = parse_image_document(body);
    if (!doc) {
        return fail("reading manifest " + std::string(digest) + " failed: " + doc.error().message);
    }
    return doc;
}

Result<void> walk(StorageBackend& storage, std::string_view body, std::string_view digest,
                  int depth, ImageParts& parts) {
    if (depth > k_max_depth) {
        return fail("index " + std::string(digest) + " nests too deep");
    }
    TRY_ASSIGN(const auto doc, parse_stored(body, digest));
    if (doc.kind == DocumentKind::manifest) {
        parts.add_blob(doc.config);
        for (const auto& l : doc.layers) {
            parts.add_blob(l);
        }
        return {};
    }
    for (const auto& entry : doc.entries) {
        if (parts.documents.count(entry.digest) != 0) {
            continue;
        }
        TRY_ASSIGN(auto child, fetch_document(storage, entry));
        const auto& stored = parts.documents[entry.digest] = std::move(child);
        TRY(walk(storage, stored, entry.digest, depth + 1, parts));
    }
    return {};
}

Result<ImageParts> collect(StorageBackend& storage, const TopDocument& top) {
    if (sha256_digest(top.body) != top.digest) {
        return fail("the manifest does not match its digest " + top.digest);
    }
    ImageParts parts;
    parts.documents[top.digest] = top.body;
    TRY(walk(storage, top.body, top.digest, 0, parts));
    return parts;
}

// Streams blob `d` from storage to `out`, checking its size and digest:
// nothing more than d.size bytes is passed on, and a blob that turns out
// different is an error (the caller discards what it wrote).
Result<void> stream_blob(StorageBackend& storage, const Descriptor& d, const ObjectSink& out) {
    Sha256 hash;
    std::uint64_t seen = 0;
    const auto damaged = [&] {
        return fail("blob " + d.digest + " in storage does not match its digest and size (" +
                    std::to_string(d.size) + " bytes)");
    };
    TRY_ASSIGN(const bool found,
               storage.read(storage_key(d.digest), [&](std::string_view piece) -> Result<void> {
                   seen += piece.size();
                   if (seen > d.size) {
                       return damaged();
                   }
                   hash.update(piece);
                   return out(piece);
               }));
    if (!found) {
        return fail("blob " + d.digest + " is missing from storage");
    }
    if (seen != d.size || "sha256:" + hash.finish_hex() != d.digest) {
        return damaged();
    }
    return {};
}

// --- OCI image layout ---------------------------------------------------------

enum class LayoutState { fresh, existing };

Result<LayoutState> prepare_layout_dir(const fs::path& dir) {
    TRY(check_layout_target(dir));
    std::error_code ec;
    if (fs::exists(dir / "oci-layout", ec)) {
        return LayoutState::existing;
    }
    TRY(make_dirs(dir));
    return LayoutState::fresh;
}

// Whether the layout has blob `d` already: a file of its size (blobs are
// named by their digest; a file cut short by a crash has another size).
bool present(const fs::path& path, const Descriptor& d) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
           static_cast<std::uint64_t>(st.st_size) == d.size;
}

// What the first write of a layout leaves when it is interrupted: blobs/
// and nothing else (oci-layout and index.json are written last).
bool only_blobs(const fs::path& dir) {
    std::error_code ec;
    auto it = fs::directory_iterator(dir, ec);
    if (ec || it == fs::directory_iterator() || it->path().filename() != "blobs" ||
        !it->is_directory(ec)) {
        return false;
    }
    it.increment(ec);
    return !ec && it == fs::directory_iterator();
}

// Staging files older than this in an output directory are a killed
// write's, not another writer's still at work.
constexpr auto k_staging_leftover_age = std::chrono::hours(1);

fs::path directory_of(const fs::path& file) {
    return file.has_parent_path() ? file.parent_path() : fs::path(".");
}

} // namespace

Result<void> check_layout_target(const fs::path& dir) {
    std::error_code ec;
    const auto status = fs::status(dir, ec);
    if (ec && ec != std::errc::no_such_file_or_directory) {
        return fail("stat \"" + dir.string() + "\" failed: " + ec.message());
    }
    if (!fs::exists(status)) {
        const auto parent = directory_of(fs::absolute(dir, ec));
        if (!fs::is_directory(parent, ec)) {
            return fail("output directory \"" + dir.string() + "\" cannot be created: \"" +
                        parent.string() + "\" is not a directory");
        }
        return {};
    }
    if (!fs::is_directory(status)) {
        return fail("output \"" + dir.string() + "\" is not a directory");
    }
    if (fs::exists(dir / "oci-layout", ec)) {
        return {};
    }
    if (!fs::is_empty(dir, ec) && !only_blobs(dir)) {
        return fail("output directory \"" + dir.string() +
                    "\" is neither empty nor an OCI image layout; give a new or empty directory");
    }
    return {};
}

Result<void> check_archive_target(const fs::path& file) {
    std::error_code ec;
    if (fs::is_directory(file, ec)) {
        return fail("output \"" + file.string() + "\" is a directory; give a file name");
    }
    if (!fs::is_directory(directory_of(file), ec)) {
        return fail("directory \"" + directory_of(file).string() + "\" of \"" + file.string() +
                    "\" does not exist");
    }
    return {};
}

Result<FilesWritten> write_oci_layout(StorageBackend& storage, const TopDocument& top,
                                      std::string_view ref_name, const fs::path& dir) {
    TRY_ASSIGN(const auto state, prepare_layout_dir(dir));
    TRY_ASSIGN(const auto parts, collect(storage, top));
    const auto blob_dir = dir / "blobs" / "sha256";
    TRY(make_dirs(blob_dir));
    remove_stale_staging_files(blob_dir, "", k_staging_leftover_age);
    FilesWritten written;
    for (const auto& d : parts.blobs) {
        const auto path = dir / layout_blob_path(d.digest);
        if (present(path, d)) {
            ++written.blobs_present;
            continue;
        }
        TRY_ASSIGN(auto staged, StagingFile::create(blob_dir));
        TRY(stream_blob(storage, d, [&](std::string_view piece) {
            return write_all(staged.fd(), piece, staged.path());
        }));
        TRY(staged.commit(path));
        ++written.blobs_copied;
        written.bytes_copied += d.size;
    }
    for (const auto& [digest, body] : parts.documents) {
        const auto path = dir / layout_blob_path(digest);
        if (present(path, Descriptor{{}, digest, body.size(), {}, {}, {}})) {
            ++written.blobs_present;
            continue;
        }
        TRY(write_file_atomic(blob_dir, path, body));
        ++written.blobs_copied;
        written.bytes_copied += body.size();
    }
    std::string existing;
    if (state == LayoutState::existing) {
        TRY_ASSIGN(existing, read_file(dir / "index.json"));
    }
    const Descriptor root{top.media_type, top.digest, top.body.size(), {}, {}, {}};
    auto index = layout_index_json(root, ref_name, existing);
    if (!index) {
        return fail("updating \"" + (dir / "index.json").string() +
                    "\" failed: " + index.error().message);
    }
    if (state == LayoutState::fresh) {
        TRY(write_file_atomic(dir, dir / "oci-layout", oci_layout_json()));
    }
    TRY(write_file_atomic(dir, dir / "index.json", *index));
    return written;
}

Result<FilesWritten> write_docker_archive(StorageBackend& storage, const TopDocument& top,
                                          std::string_view architecture, std::string_view repo_tag,
                                          const fs::path& file) {
    if (sha256_digest(top.body) != top.digest) {
        return fail("the manifest does not match its digest " + top.digest);
    }
    TRY_ASSIGN(auto doc, parse_stored(top.body, top.digest));
    if (doc.kind == DocumentKind::index) {
        const auto entry = platform_entry(doc, architecture);
        if (!entry) {
            return fail("the image has no manifest for linux/" + std::string(architecture));
        }
        TRY_ASSIGN(const auto body, fetch_document(storage, *entry));
        TRY_ASSIGN(doc, parse_stored(body, entry->digest));
        if (doc.kind != DocumentKind::manifest) {
            return fail("index entry " + entry->digest + " is not a manifest");
        }
    }
    ImageParts parts;
    parts.add_blob(doc.config);
    for (const auto& l : doc.layers) {
        parts.add_blob(l);
    }

    TRY(check_archive_target(file));
    // Within NAME_MAX (255) with the 21 characters StagingFile adds.
    const auto staging_prefix = "." + file.filename().string().substr(0, 200) + ".";
    remove_stale_staging_files(directory_of(file), staging_prefix, k_staging_leftover_age);
    TRY_ASSIGN(auto staged, StagingFile::create(directory_of(file), 0644, staging_prefix));
    const auto put = [&](std::string_view data) {
        return write_all(staged.fd(), data, staged.path());
    };
    FilesWritten written;
    for (const auto* dir : {"blobs", "blobs/sha256"}) {
        TRY(put(tar_header(TarHeader{dir, TarType::directory, 0755, 0, {}, 1})));
    }
    for (const auto& d : parts.blobs) {
        const auto path = layout_blob_path(d.digest);
        TRY(put(tar_header(TarHeader{path, TarType::file, 0644, d.size, {}, 1})));
        TRY(stream_blob(storage, d, put));
        TRY(put(std::string(tar_padding(d.size), '\0')));
        ++written.blobs_copied;
        written.bytes_copied += d.size;
    }
    const auto manifest = docker_archive_manifest_json(doc.config, doc.layers, repo_tag);
    TRY(put(tar_header(TarHeader{"manifest.json", TarType::file, 0644, manifest.size(), {}, 1})));
    TRY(put(manifest));
    TRY(put(std::string(tar_padding(manifest.size()), '\0')));
    TRY(put(tar_end()));
    TRY(staged.commit(file));
    return written;
}

} // namespace nixery
