#include "testutil.hpp"

#include "pack/store_paths.hpp"
#include "util/files.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <cstdio>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

namespace testutil {

TempDir::TempDir() {
    std::random_device rd;
    m_path = std::filesystem::temp_directory_path() /
             ("nixery-unit-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(m_path);
}

TempDir::~TempDir() {
    // NIXERY_KEEP_TEST_DIRS=1 keeps them for inspection.
    if (std::getenv("NIXERY_KEEP_TEST_DIRS") == nullptr) {
        std::error_code ec;
        std::filesystem::remove_all(m_path, ec);
    }
}

void write_file(const std::filesystem::path& path, const std::string& content, int mode) {
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << content;
    ::chmod(path.c_str(), static_cast<mode_t>(mode));
}

std::string captured(int fd, const std::function<void()>& run) {
    char path[] = "/tmp/nixery-captured-XXXXXX";
    const int file = ::mkstemp(path);
    if (file < 0) {
        throw std::runtime_error("mkstemp failed");
    }
    ::unlink(path);
    std::fflush(nullptr);
    const int saved = ::dup(fd);
    ::dup2(file, fd);
    run();
    std::fflush(nullptr);
    ::dup2(saved, fd);
    ::close(saved);
    std::string text;
    char buf[4096];
    for (off_t at = 0;;) {
        const auto n = ::pread(file, buf, sizeof buf, at);
        if (n <= 0) {
            break;
        }
        text.append(buf, static_cast<std::size_t>(n));
        at += n;
    }
    ::close(file);
    return text;
}

std::string slurp(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string gunzip_file(const std::filesystem::path& file) {
    const auto data = slurp(file);
    z_stream z{};
    inflateInit2(&z, 15 + 16);
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    std::string out;
    char buf[65536];
    int rc = Z_OK;
    while (rc != Z_STREAM_END) {
        z.next_out = reinterpret_cast<Bytef*>(buf);
        z.avail_out = sizeof buf;
        rc = inflate(&z, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END) {
            inflateEnd(&z);
            throw std::runtime_error("inflate failed");
        }
        out.append(buf, sizeof buf - z.avail_out);
    }
    inflateEnd(&z);
    return out;
}

std::map<std::string, TarEntry> read_layer(const std::filesystem::path& file, std::string* order) {
    std::map<std::string, TarEntry> out;
    archive* a = archive_read_new();
    archive_read_support_filter_gzip(a);
    archive_read_support_format_tar(a);
    if (archive_read_open_filename(a, file.c_str(), 65536) != ARCHIVE_OK) {
        archive_read_free(a);
        throw std::runtime_error("cannot open layer");
    }
    archive_entry* e = nullptr;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        TarEntry t;
        std::string path = archive_entry_pathname(e);
        if (!path.empty() && path.back() == '/') {
            path.pop_back();
        }
        t.mode = archive_entry_perm(e);
        t.mtime = archive_entry_mtime(e);
        t.uid = archive_entry_uid(e);
        t.gid = archive_entry_gid(e);
        t.uname = archive_entry_uname(e) ? archive_entry_uname(e) : "";
        t.gname = archive_entry_gname(e) ? archive_entry_gname(e) : "";
        if (archive_entry_hardlink(e) != nullptr) {
            t.type = 'h';
            t.content = archive_entry_hardlink(e);
        } else if (archive_entry_filetype(e) == AE_IFDIR) {
            t.type = 'd';
        } else if (archive_entry_filetype(e) == AE_IFLNK) {
            t.type = 'l';
            t.content = archive_entry_symlink(e);
        } else {
            t.type = 'f';
            char buf[65536];
            la_ssize_t n;
            while ((n = archive_read_data(a, buf, sizeof buf)) > 0) {
                t.content.append(buf, static_cast<std::size_t>(n));
            }
        }
        if (order != nullptr) {
            *order += path + "\n";
        }
        out[path] = t;
    }
    archive_read_free(a);
    return out;
}

std::filesystem::path data_file(const std::string& name) {
    // build/unit-tests and build/check/unit-tests both sit below the checkout.
    auto dir = std::filesystem::read_symlink("/proc/self/exe").parent_path();
    for (; dir.has_relative_path(); dir = dir.parent_path()) {
        if (std::filesystem::exists(dir / "tests" / "unit" / "data")) {
            return dir / "tests" / "unit" / "data" / name;
        }
    }
    throw std::runtime_error("tests/unit/data not found above the test binary");
}

rapidjson::Document load_json(const std::string& name) {
    const auto text = slurp(data_file(name));
    rapidjson::Document d;
    d.Parse(text.c_str(), text.size());
    REQUIRE_FALSE(d.HasParseError());
    return d;
}

nixery::BuildCache open_cache(const TempDir& dir) {
    auto db = nixery::Db::open(dir / "cache.sqlite", k_sql);
    REQUIRE_MESSAGE(db, (db ? "" : db.error().message));
    return nixery::BuildCache(std::move(*db));
}

FakeStore::FakeStore()
    : store((dir.path() / "store").string()), a(store + "/" + k_hash + "-a-1.0"),
      b(store + "/" + std::string(32, 'k') + "-b-2.0") {
    write_file(a + "/bin/a", "#!/bin/sh\necho a\n", 0555);
    write_file(a + "/share/doc/readme", "same text\n", 0444);
    write_file(b + "/lib/data", "same text\n", 0444);
    write_file(b + "/lib/empty", "", 0444);
    write_file(b + "/lib/exec-same", "same text\n", 0555);
    write_file(b + "/lib/exec-twin", "same text\n", 0555);
    ::link((b + "/lib/data").c_str(), (b + "/lib/data-link").c_str());
    ::symlink("data", (b + "/lib/alias").c_str());
    ::chmod((a + "/bin").c_str(), 0555);
}

nixery::PackedLayer pack_store_paths(const std::vector<std::string>& paths,
                                     const std::string& store, const std::filesystem::path& out,
                                     nixery::PackOptions options) {
    using namespace nixery;
    UniqueFd fd(::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    REQUIRE(fd);
    auto w = LayerWriter::open(fd.get(), out, options);
    REQUIRE(w);
    auto added = add_store_paths(**w, paths, store);
    REQUIRE_MESSAGE(added, (added ? "" : added.error().message));
    auto packed = (*w)->finish();
    REQUIRE(packed);
    REQUIRE(packed->size() == 1);
    return packed->front();
}

} // namespace testutil
