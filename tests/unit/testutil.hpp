// Helpers shared by the unit tests: a temporary directory per test (kept
// with NIXERY_KEEP_TEST_DIRS=1, for inspection), a fake store, and reading
// back layers.
#pragma once

#include "pack/layer_writer.hpp"

#include "cache/build_cache.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <rapidjson/document.h>
#include <string>

namespace testutil {

class TempDir {
public:
    TempDir();
    ~TempDir();
    const std::filesystem::path& path() const { return m_path; }
    std::filesystem::path operator/(const std::string& rel) const { return m_path / rel; }

private:
    std::filesystem::path m_path;
};

void write_file(const std::filesystem::path& path, const std::string& content, int mode = 0644);

// What `run` writes to the file descriptor `fd` (STDOUT_FILENO,
// STDERR_FILENO), which goes to a temporary file for the call; stdio's
// buffers are flushed before it is put back.
std::string captured(int fd, const std::function<void()>& run);

struct TarEntry {
    char type = '?'; // 'd' directory, 'f' file, 'l' symlink, 'h' hard link
    int mode = 0;
    std::int64_t mtime = 0;
    std::int64_t uid = -1, gid = -1;
    std::string uname, gname;
    std::string content; // file data, or the link target
};

// Reads a gzip'd tar file into path → entry, keeping the order in `order`.
std::map<std::string, TarEntry> read_layer(const std::filesystem::path& file,
                                           std::string* order = nullptr);

std::string gunzip_file(const std::filesystem::path& file);
// A fixture of tests/unit/data, found from the test binary's location.
std::filesystem::path data_file(const std::string& name);
std::string slurp(const std::filesystem::path& file);
// A JSON fixture of tests/unit/data, parsed; fails the test when it is not JSON.
rapidjson::Document load_json(const std::string& name);

// The schema files (sql/); tests run from the checkout root.
inline const std::filesystem::path k_sql = "sql";

// A build cache in `dir`, with the schema of k_sql.
nixery::BuildCache open_cache(const TempDir& dir);

// The hash part of FakeStore's first package.
inline const std::string k_hash(32, 'h');

// A fake store in a TempDir with two packages, a and b; b has a hard link
// and a symlink (tests of pack/).
struct FakeStore {
    TempDir dir;
    std::string store;
    std::string a;
    std::string b;

    FakeStore();
};

// Packs `paths` of `store` into the layer file `out` (tests of pack/);
// any failure fails the test.
nixery::PackedLayer pack_store_paths(const std::vector<std::string>& paths,
                                     const std::string& store, const std::filesystem::path& out,
                                     nixery::PackOptions options = {});

} // namespace testutil
