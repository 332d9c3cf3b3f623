#include "pack/layer_writer.hpp"
#include "pack/store_paths.hpp"
#include "testutil.hpp"
#include "util/files.hpp"
#include "util/sha256.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>

using namespace nixery;
using testutil::FakeStore;
using testutil::k_hash;
using testutil::TempDir;

namespace {

PackedLayer pack(const std::vector<std::string>& paths, const std::string& store,
                 const std::filesystem::path& out) {
    return testutil::pack_store_paths(paths, store, out);
}

} // namespace

TEST_SUITE_BEGIN("pack");

TEST_CASE("add_store_paths") {
    FakeStore fs;
    const auto out1 = fs.dir / "one.tar.gz";
    const auto out2 = fs.dir / "two.tar.gz";
    const auto p1 = pack({fs.b, fs.a}, fs.store, out1);

    SUBCASE("digests are of the blob and of the uncompressed tar") {
        CHECK(p1.digest == sha256_digest(testutil::slurp(out1)));
        CHECK(p1.diff_id == sha256_digest(testutil::gunzip_file(out1)));
        CHECK(p1.size == std::filesystem::file_size(out1));
    }
    SUBCASE("byte-identical on every run, whatever the input order") {
        const auto p2 = pack({fs.a, fs.b}, fs.store, out2);
        CHECK(p2.digest == p1.digest);
        CHECK(testutil::slurp(out1) == testutil::slurp(out2));
    }
    SUBCASE("gzip header carries no timestamp and no file name") {
        const auto blob = testutil::slurp(out1);
        REQUIRE(blob.size() > 10);
        CHECK(static_cast<unsigned char>(blob[0]) == 0x1f);
        CHECK(static_cast<unsigned char>(blob[1]) == 0x8b);
        CHECK((blob[3] & 0x08) == 0); // FNAME
        CHECK(blob.substr(4, 4) == std::string(4, '\0'));
    }
    SUBCASE("entries: order, types, modes, owners, times") {
        std::string order;
        const auto entries = testutil::read_layer(out1, &order);
        const auto ra = "nix/store/" + k_hash + "-a-1.0";
        const auto rb = "nix/store/" + std::string(32, 'k') + "-b-2.0";
        CHECK(order.rfind("nix\nnix/store\n" + ra + "\n" + ra + "/bin\n", 0) == 0);
        CHECK(entries.at(ra + "/bin").type == 'd');
        CHECK(entries.at(ra + "/bin").mode == 0555);
        CHECK(entries.at(ra + "/bin/a").type == 'f');
        CHECK(entries.at(ra + "/bin/a").mode == 0555);
        CHECK(entries.at(ra + "/bin/a").content == "#!/bin/sh\necho a\n");
        CHECK(entries.at(rb + "/lib/alias").type == 'l');
        CHECK(entries.at(rb + "/lib/alias").content == "data");
        CHECK(entries.at(rb + "/lib/empty").type == 'f');
        for (const auto& [path, e] : entries) {
            CAPTURE(path);
            CHECK(e.mtime == 1);
            CHECK(e.uid == 0);
            CHECK(e.gid == 0);
            CHECK(e.uname.empty());
            CHECK(e.gname.empty());
        }
    }
    SUBCASE("identical files become hard links to the first, modes permitting") {
        const auto entries = testutil::read_layer(out1);
        const auto ra = "nix/store/" + k_hash + "-a-1.0";
        const auto rb = "nix/store/" + std::string(32, 'k') + "-b-2.0";
        CHECK(entries.at(ra + "/share/doc/readme").type == 'f');
        CHECK(entries.at(rb + "/lib/data").type == 'h');
        CHECK(entries.at(rb + "/lib/data").content == ra + "/share/doc/readme");
        CHECK(entries.at(rb + "/lib/data-link").type == 'h');
        CHECK(entries.at(rb + "/lib/data").mode == 0444);
        // Same content, other mode: not linked, it would lose its mode.
        CHECK(entries.at(rb + "/lib/exec-same").type == 'f');
        // A link entry has its inode's mode: Docker chmods the inode to it.
        CHECK(entries.at(rb + "/lib/exec-twin").type == 'h');
        CHECK(entries.at(rb + "/lib/exec-twin").content == rb + "/lib/exec-same");
        CHECK(entries.at(rb + "/lib/exec-twin").mode == 0555);
    }
    SUBCASE("a file named like a whiteout is never a hard link's target") {
        // Runtimes drop ".wh.*" entries: a link to one fails to unpack.
        const auto c = fs.store + "/" + std::string(32, 'w') + "-wh-1.0";
        std::filesystem::create_directories(c + "/d");
        testutil::write_file(c + "/d/.wh..wh..opq", "same\n");
        testutil::write_file(c + "/d/keep", "same\n");
        const auto out = fs.dir / "wh.tar.gz";
        pack({c}, fs.store, out);
        const auto entries = testutil::read_layer(out);
        const auto rc = "nix/store/" + std::string(32, 'w') + "-wh-1.0/d/";
        CHECK(entries.at(rc + "keep").type == 'f');
        CHECK(entries.at(rc + "keep").content == "same\n");
    }
    SUBCASE("one walk into gzip and zstd: the same blobs as two walks") {
        const auto zst = fs.dir / "one.tar.zst";
        const auto alone =
            testutil::pack_store_paths({fs.b, fs.a}, fs.store, zst, {LayerCompression::zstd, 2});
        const auto gz_twin = fs.dir / "twin.tar.gz";
        const auto zst_twin = fs.dir / "twin.tar.zst";
        UniqueFd gz_fd(::open(gz_twin.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        UniqueFd zst_fd(::open(zst_twin.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        auto w = LayerWriter::open({{gz_fd.get(), gz_twin, LayerCompression::gzip},
                                    {zst_fd.get(), zst_twin, LayerCompression::zstd}},
                                   2);
        REQUIRE(w);
        REQUIRE(add_store_paths(**w, {fs.b, fs.a}, fs.store));
        const auto twins = (*w)->finish();
        REQUIRE(twins);
        REQUIRE(twins->size() == 2);
        CHECK(testutil::slurp(gz_twin) == testutil::slurp(out1));
        CHECK(testutil::slurp(zst_twin) == testutil::slurp(zst));
        CHECK(twins->at(0).digest == p1.digest);
        CHECK(twins->at(1).digest == alone.digest);
        CHECK(twins->at(0).diff_id == p1.diff_id);
        CHECK(twins->at(1).diff_id == p1.diff_id);
        CHECK(twins->at(1).size == std::filesystem::file_size(zst_twin));
        CHECK_FALSE(LayerWriter::open(std::vector<LayerOutput>{}));
    }
    SUBCASE("not a store path") {
        UniqueFd fd(::open((fs.dir / "x").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
        auto w = LayerWriter::open(fd.get(), fs.dir / "x");
        REQUIRE(w);
        CHECK_FALSE(add_store_paths(**w, {fs.store + "/../etc"}, fs.store));
        CHECK_FALSE(add_store_paths(**w, {"/etc/passwd"}, fs.store));
        CHECK_FALSE(add_store_paths(**w, {fs.store + "/missing"}, fs.store));
    }
}

TEST_SUITE_END();
