#include "pack/layer_writer.hpp"
#include "pack/top_layer.hpp"
#include "testutil.hpp"
#include "util/files.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace nixery;
using testutil::FakeStore;
using testutil::TempDir;

TEST_SUITE_BEGIN("pack");

TEST_CASE("plan_top_layer") {
    FakeStore fs;
    testutil::write_file(fs.b + "/bin/b", "b", 0555);
    testutil::write_file(fs.b + "/bin/a", "conflict", 0555);
    testutil::write_file(fs.b + "/bin/env", "env", 0555);
    auto plan = plan_top_layer({fs.a, fs.b});
    REQUIRE(plan);
    const auto& p = *plan;
    CHECK(p.at("bin").kind == TopEntry::Kind::directory);
    CHECK(p.at("bin/a").target == fs.a + "/bin/a"); // the earlier package wins
    CHECK(p.at("bin/b").target == fs.b + "/bin/b");
    CHECK(p.at("lib/alias").target == fs.b + "/lib/alias");
    CHECK(p.at("tmp").mode == 01777);
    CHECK(p.at("usr/bin/env").target == fs.b + "/bin/env");
    CHECK(p.at("etc/passwd").kind == TopEntry::Kind::file);
    CHECK(p.at("etc/passwd").target.find("root:x:0:0:") == 0);
    CHECK(p.at("etc/group").target.find("nobody:x:65534:") != std::string::npos);

    SUBCASE("names runtimes read as whiteouts are left out") {
        testutil::write_file(fs.a + "/.wh.nix", "x\n", 0444);
        testutil::write_file(fs.a + "/share/.wh..wh..opq", "x\n", 0444);
        auto plan2 = plan_top_layer({fs.a});
        REQUIRE(plan2);
        CHECK(plan2->count(".wh.nix") == 0);
        CHECK(plan2->count("share/.wh..wh..opq") == 0);
    }
    SUBCASE("a package's own /etc/passwd is kept") {
        testutil::write_file(fs.a + "/etc/passwd", "mine\n", 0444);
        auto plan2 = plan_top_layer({fs.a});
        REQUIRE(plan2);
        CHECK(plan2->at("etc/passwd").kind == TopEntry::Kind::symlink);
        CHECK(plan2->at("etc/group").kind == TopEntry::Kind::file);
        CHECK(plan2->count("usr/bin/env") == 0); // nothing provides env
    }
    SUBCASE("a package that is a symlink: its tree only when that is a directory in the store") {
        const auto link = fs.store + "/" + std::string(32, 'l') + "-link";
        REQUIRE(::symlink(fs.a.c_str(), link.c_str()) == 0);
        auto via = plan_top_layer({link});
        REQUIRE(via);
        CHECK(via->at("bin/a").target == link + "/bin/a");

        // Out of the store (as `ln -s /etc $out` or a link to
        // /run/current-system): not the build machine's tree in the image.
        testutil::write_file(fs.dir / "host/secret", "host\n", 0444);
        const auto out = fs.store + "/" + std::string(32, 'o') + "-out";
        REQUIRE(::symlink((fs.dir / "host").c_str(), out.c_str()) == 0);
        auto outside = plan_top_layer({out});
        REQUIRE(outside);
        CHECK(outside->count("secret") == 0);

        // Dangling, and a loop: no tree, not a failed build.
        const auto dangling = fs.store + "/" + std::string(32, 'd') + "-dangling";
        REQUIRE(::symlink("/run/current-system/sw/bin/nothing", dangling.c_str()) == 0);
        const auto loop = fs.store + "/" + std::string(32, 'p') + "-loop";
        REQUIRE(::symlink(loop.c_str(), loop.c_str()) == 0);
        auto others = plan_top_layer({dangling, loop, fs.b});
        REQUIRE_MESSAGE(others, (others ? "" : others.error().message));
        CHECK(others->at("bin/b").target == fs.b + "/bin/b");
        CHECK(others->count("etc/passwd") == 1);
    }
    SUBCASE("packs reproducibly") {
        const auto out = fs.dir / "top.tar.gz";
        UniqueFd fd(::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        auto w = LayerWriter::open(fd.get(), out);
        REQUIRE(w);
        REQUIRE(add_top_layer(**w, p));
        auto packed = (*w)->finish();
        REQUIRE(packed);
        const auto entries = testutil::read_layer(out);
        CHECK(entries.at("bin/b").type == 'l');
        CHECK(entries.at("tmp").mode == 01777);
        CHECK(entries.at("etc/passwd").content == p.at("etc/passwd").target);
    }
}

TEST_SUITE_END();
