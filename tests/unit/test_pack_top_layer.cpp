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
