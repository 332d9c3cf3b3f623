#include "pack/layer_writer.hpp"
#include "pack/store_paths.hpp"
#include "pack/tar.hpp"
#include "testutil.hpp"
#include "util/files.hpp"
#include "util/subprocess.hpp"

#include <clocale>
#include <dirent.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace nixery;
using testutil::TempDir;

namespace {

std::string field(const std::string& block, std::size_t offset, std::size_t size) {
    auto f = block.substr(offset, size);
    return f.substr(0, f.find('\0'));
}

bool checksum_ok(const std::string& block) {
    unsigned sum = 0;
    for (std::size_t i = 0; i < 512; ++i) {
        sum += i >= 148 && i < 156 ? ' ' : static_cast<unsigned char>(block[i]);
    }
    return std::stoul(field(block, 148, 8), nullptr, 8) == sum;
}

// Every entry under `root`, by relative path (bytes), described by type,
// mode, size, link target and content.
void describe_tree(const std::string& root, const std::string& rel,
                   std::map<std::string, std::string>& out) {
    const auto abs = rel.empty() ? root : root + "/" + rel;
    struct stat st {};
    REQUIRE(::lstat(abs.c_str(), &st) == 0);
    std::string d = std::to_string(st.st_mode & 07777) + " ";
    if (S_ISDIR(st.st_mode)) {
        d += "dir";
    } else if (S_ISLNK(st.st_mode)) {
        std::string target(4096, '\0');
        target.resize(static_cast<std::size_t>(::readlink(abs.c_str(), target.data(), 4096)));
        d = "link -> " + target; // a symlink's own mode means nothing
    } else {
        d += "file " + std::to_string(st.st_size) + " " + testutil::slurp(abs);
    }
    out[rel] = d;
    if (S_ISDIR(st.st_mode)) {
        std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(abs.c_str()), ::closedir);
        REQUIRE(dir);
        while (const dirent* e = ::readdir(dir.get())) {
            const std::string name = e->d_name;
            if (name != "." && name != "..") {
                describe_tree(root, rel.empty() ? name : rel + "/" + name, out);
            }
        }
    }
}

// A store path with every kind of name a store path can hold.
std::string odd_store_path(const std::string& store) {
    const auto p = store + "/" + std::string(32, 'n') + "-oddnames-1.0";
    const std::string utf8 = "\xc3\xbcn\xc3\xaf\x63\xc3\xb8\x64\xc3\xa9-\xe5\x90\x8d\xe5\x89\x8d";
    const std::string latin1 = "caf\xe9";
    testutil::write_file(p + "/" + utf8 + ".txt", "unicode\n", 0444);
    testutil::write_file(p + "/" + latin1, "latin-1\n", 0444);
    testutil::write_file(p + "/\x80\xff\xfe", "bytes\n", 0555);
    testutil::write_file(p + "/with space\tand tab\nand newline", "controls\n", 0444);
    testutil::write_file(p + "/" + std::string(251, 'n') + ".txt", "long name\n", 0444);
    testutil::write_file(p + "/" + latin1 + std::string(251, 'x'), "long latin-1\n", 0444);
    testutil::write_file(p + "/empty", "", 0444);
    std::string deep = p + "/deep";
    for (int i = 0; i < 30; ++i) {
        deep += "/" + std::to_string(i) + "-" + std::string(40, 'd') + latin1;
    }
    testutil::write_file(deep + "/leaf", "deep\n", 0444);
    std::filesystem::create_directories(p + "/empty-dir");
    ::link((p + "/" + utf8 + ".txt").c_str(), (p + "/hard-" + latin1).c_str());
    ::symlink((utf8 + ".txt").c_str(), (p + "/sym-" + utf8).c_str());
    ::symlink(latin1.c_str(), (p + "/sym-" + latin1).c_str());
    ::symlink("does/not/exist", (p + "/dangling").c_str());
    ::symlink(deep.c_str(), (p + "/sym-long").c_str());
    return p;
}

PackedLayer pack(const std::string& store, const std::string& path,
                 const std::filesystem::path& out, PackOptions options = {}) {
    return testutil::pack_store_paths({path}, store, out, options);
}

} // namespace

TEST_SUITE_BEGIN("pack");

TEST_CASE("tar_header") {
    SUBCASE("a short name: one ustar block, bytes as given") {
        const auto h = tar_header({"nix/caf\xe9", TarType::file, 0555, 12, {}});
        REQUIRE(h.size() == 512);
        CHECK(field(h, 0, 100) == "nix/caf\xe9");
        CHECK(field(h, 100, 8) == "0000555");
        CHECK(field(h, 124, 12) == "00000000014");
        CHECK(field(h, 136, 12) == "00000000001");
        CHECK(h[156] == '0');
        CHECK(h.substr(257, 8) == std::string("ustar\0"
                                              "00",
                                              8));
        CHECK(checksum_ok(h));
    }
    SUBCASE("a directory ends in '/'") {
        CHECK(field(tar_header({"nix/store", TarType::directory, 0755, 0, {}}), 0, 100) ==
              "nix/store/");
    }
    SUBCASE("a name that splits at a '/' uses the prefix field") {
        const std::string name = std::string(120, 'p') + "/" + std::string(90, 'n');
        const auto h = tar_header({name, TarType::file, 0444, 0, {}});
        REQUIRE(h.size() == 512);
        CHECK(field(h, 345, 155) == std::string(120, 'p'));
        CHECK(field(h, 0, 100) == std::string(90, 'n'));
    }
    SUBCASE("a longer name goes into a pax header, binary when not UTF-8") {
        const std::string utf8 = std::string(300, 'u') + "\xc3\xbc";
        const auto h = tar_header({utf8, TarType::file, 0444, 0, {}});
        REQUIRE(h.size() == 3 * 512);
        CHECK(h[156] == 'x');
        CHECK(checksum_ok(h));
        CHECK(h.substr(512, 512).find("path=" + utf8 + "\n") != std::string::npos);
        CHECK(h.find("hdrcharset") == std::string::npos);
        CHECK(checksum_ok(h.substr(1024)));

        const std::string latin1 = std::string(300, 'l') + "\xe9";
        const auto b = tar_header({latin1, TarType::file, 0444, 0, {}});
        CHECK(b.find("21 hdrcharset=BINARY\n") != std::string::npos);
        CHECK(b.find("path=" + latin1 + "\n") != std::string::npos);
    }
    SUBCASE("record lengths count themselves") {
        // "path=" + 250 bytes + "\n" is 256, with " " and "260" it is 260.
        const auto h = tar_header({std::string(250, 'c'), TarType::file, 0444, 0, {}});
        CHECK(h.substr(512, 9) == "260 path=");
        CHECK(h.substr(512 + 259, 2) == std::string("\n\0", 2));
    }
    SUBCASE("long link targets and sizes of 8 GiB and more") {
        const std::string target(150, 't');
        const auto l = tar_header({"a", TarType::symlink, 0777, 0, target});
        CHECK(l.find("linkpath=" + target + "\n") != std::string::npos);
        CHECK(field(l.substr(1024), 157, 100) == std::string(100, 't'));
        const auto big = tar_header({"a", TarType::file, 0444, 1ULL << 33, {}});
        CHECK(big.find("size=8589934592\n") != std::string::npos);
        CHECK(field(big.substr(1024), 124, 12) == "00000000000");
    }
}

TEST_CASE("layers hold every name a store path can") {
    TempDir dir;
    const auto store = (dir / "store").string();
    const auto path = odd_store_path(store);
    const auto layer = dir / "layer.tar.gz";
    const auto packed = pack(store, path, layer);

    SUBCASE("GNU tar in the C locale unpacks the tree as it is") {
        for (const auto& [file, options] :
             {std::pair{layer, PackOptions{}},
              std::pair{dir / "layer.tar.zst", PackOptions{LayerCompression::zstd, 2}}}) {
            if (options.compression == LayerCompression::zstd) {
                pack(store, path, file, options);
            }
            const auto out = dir / ("unpacked-" + file.extension().string().substr(1));
            std::filesystem::create_directories(out);
            ProcessSpec spec;
            spec.argv = {"tar", "-xf", file.string(), "-C", out.string()};
            spec.env = {"LANG=C", "LC_ALL=C"};
            auto r = run_process(spec);
            REQUIRE(r);
            REQUIRE_MESSAGE(r->ok(), r->err_tail);
            std::map<std::string, std::string> want, got;
            describe_tree(path, "", want);
            describe_tree((out / "nix/store" / std::filesystem::path(path).filename()).string(), "",
                          got);
            CHECK(want.size() == 46);
            CHECK(got == want);
        }
    }
    SUBCASE("the same bytes whatever the locale and the threads") {
        const auto c = std::setlocale(LC_ALL, "C");
        REQUIRE(c != nullptr);
        const auto again = pack(store, path, dir / "c.tar.gz", {LayerCompression::gzip, 1});
        const bool utf8 = std::setlocale(LC_ALL, "C.UTF-8") != nullptr;
        const auto other = pack(store, path, dir / "utf8.tar.gz", {LayerCompression::gzip, 3});
        std::setlocale(LC_ALL, "C");
        CHECK(utf8);
        CHECK(again.digest == packed.digest);
        CHECK(other.digest == packed.digest);
        CHECK(other.diff_id == packed.diff_id);
    }
}

TEST_SUITE_END();
