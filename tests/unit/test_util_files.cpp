#include "testutil.hpp"
#include "util/files.hpp"

#include <doctest/doctest.h>
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

TEST_SUITE_END();
