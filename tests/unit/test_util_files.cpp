#include "testutil.hpp"
#include "util/files.hpp"

#include <ctime>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>

using namespace nixery;
using testutil::TempDir;

namespace {

int mode_of(const std::filesystem::path& p) {
    struct stat st {};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    return static_cast<int>(st.st_mode & 07777);
}

// Runs `f` under `mask`, as nixery.service does under UMask=0027.
template <typename F> void with_umask(mode_t mask, F f) {
    const auto old = ::umask(mask);
    f();
    ::umask(old);
}

} // namespace

TEST_SUITE_BEGIN("util");

TEST_CASE("make_private_dir") {
    TempDir dir;
    with_umask(0027, [&] {
        REQUIRE(make_private_dir(dir / "state/git"));
        REQUIRE(make_dirs(dir / "state/storage/layers"));
    });
    CHECK(mode_of(dir / "state/git") == 0700);
    // What nginx must pass through stays open to the group.
    CHECK(mode_of(dir / "state/storage/layers") == 0750);
    std::filesystem::permissions(dir / "state/git", std::filesystem::perms(0750));
    REQUIRE(make_private_dir(dir / "state/git")); // an older, laxer one
    CHECK(mode_of(dir / "state/git") == 0700);
}

TEST_CASE(
    "sorted_dir_entries: every name but . and .., in byte order; a missing directory is an error") {
    TempDir dir;
    for (const auto* name : {"b", "B", "a b", ".hidden", "\xff"}) {
        testutil::write_file(dir / name, "");
    }
    REQUIRE(make_dirs(dir / "sub"));
    const auto names = sorted_dir_entries(dir.path().string());
    REQUIRE(names);
    CHECK(*names == std::vector<std::string>{".hidden", "B", "a b", "b", "sub", "\xff"});
    const auto missing = sorted_dir_entries((dir / "gone").string());
    REQUIRE_FALSE(missing);
    CHECK(missing.error().message.find("opendir") != std::string::npos);
}

TEST_CASE("StagingFile") {
    TempDir dir;
    std::filesystem::create_directories(dir / "staging");
    with_umask(0027, [&] {
        auto staged = StagingFile::create(dir / "staging");
        REQUIRE(staged);
        REQUIRE(staged->commit(dir / "blob"));
    });
    CHECK(mode_of(dir / "blob") == 0644); // nginx's workers read blobs
}

TEST_CASE("StagingFile: a bare file name is in the working directory") {
    TempDir dir;
    const auto before = std::filesystem::current_path();
    std::filesystem::current_path(dir.path());
    auto staged = StagingFile::create(".");
    REQUIRE(staged);
    const auto committed = staged->commit("out.tar"); // `nixery build --docker-archive out.tar`
    std::filesystem::current_path(before);
    CHECK_MESSAGE(committed, (committed ? "" : committed.error().message));
    CHECK(std::filesystem::is_regular_file(dir / "out.tar"));
}

TEST_CASE("stale staging files: what a killed process left, by name and age") {
    TempDir dir;
    const auto d = dir.path();
    const auto old = std::time(nullptr) - 7200;
    const auto age = [&](const std::filesystem::path& p) {
        const struct timespec times[2] = {{old, 0}, {old, 0}};
        REQUIRE(::utimensat(AT_FDCWD, p.c_str(), times, AT_SYMLINK_NOFOLLOW) == 0);
    };
    testutil::write_file(d / "0123456789abcdef.tmp", "left");             // stale
    testutil::write_file(d / "fedcba9876543210.tmp", "being written");    // fresh
    testutil::write_file(d / ".out.tar.0123456789abcdef.tmp", "archive"); // another prefix
    testutil::write_file(d / "notes.tmp", "mine");                        // not a staging name
    testutil::write_file(d / "0123456789ABCDEF.tmp", "upper case");       // not one either
    std::filesystem::create_directory(d / "aaaaaaaaaaaaaaaa.tmp");        // a directory
    std::filesystem::create_symlink("notes.tmp", d / "bbbbbbbbbbbbbbbb.tmp");
    for (const auto* name :
         {"0123456789abcdef.tmp", ".out.tar.0123456789abcdef.tmp", "notes.tmp",
          "0123456789ABCDEF.tmp", "aaaaaaaaaaaaaaaa.tmp", "bbbbbbbbbbbbbbbb.tmp"}) {
        age(d / name);
    }
    const auto found = stale_staging_files(d, "", std::time(nullptr) - 3600);
    REQUIRE(found);
    REQUIRE(found->size() == 1);
    CHECK((*found)[0].path == d / "0123456789abcdef.tmp");
    CHECK((*found)[0].size == 4);
    const auto archive = stale_staging_files(d, ".out.tar.", std::time(nullptr) - 3600);
    REQUIRE(archive);
    REQUIRE(archive->size() == 1);
    CHECK((*archive)[0].path == d / ".out.tar.0123456789abcdef.tmp");

    remove_stale_staging_files(d, "", std::chrono::hours(1));
    CHECK_FALSE(std::filesystem::exists(d / "0123456789abcdef.tmp"));
    for (const auto* kept : {"fedcba9876543210.tmp", ".out.tar.0123456789abcdef.tmp", "notes.tmp",
                             "0123456789ABCDEF.tmp", "aaaaaaaaaaaaaaaa.tmp"}) {
        CHECK_MESSAGE(std::filesystem::exists(d / kept), kept);
    }
    CHECK(std::filesystem::is_symlink(d / "bbbbbbbbbbbbbbbb.tmp"));
    // A directory that is not there has none.
    const auto missing = stale_staging_files(d / "absent", "", std::time(nullptr));
    REQUIRE(missing);
    CHECK(missing->empty());
}

TEST_SUITE_END();
