#include "testutil.hpp"
#include "util/files.hpp"
#include "util/lock.hpp"
#include "util/log.hpp"
#include "util/markup.hpp"
#include "util/sha256.hpp"
#include "util/subprocess.hpp"
#include "util/text.hpp"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace nixery;
using namespace std::chrono_literals;
using testutil::TempDir;

namespace {

ProcessSpec argv_only(std::vector<std::string> argv) {
    ProcessSpec spec;
    spec.argv = std::move(argv);
    return spec;
}

} // namespace

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

TEST_CASE("log::without_userinfo") {
    CHECK(log::without_userinfo("https://user:tok@host.example/a/b.git?x=1") ==
          "https://host.example/a/b.git?x=1");
    CHECK(log::without_userinfo("https://tok@host/") == "https://host/");
    CHECK(log::without_userinfo("ssh://git@host:22/repo") == "ssh://host:22/repo");
    CHECK(log::without_userinfo("https://host/a@b") == "https://host/a@b"); // @ in the path
    CHECK(log::without_userinfo("git@github.com:org/repo.git") == "git@github.com:org/repo.git");
    CHECK(log::without_userinfo("/srv/pkgs") == "/srv/pkgs");
}

TEST_CASE("log::scrub_userinfo") {
    const std::string url = "https://user:tok@host/r.git";
    CHECK(log::scrub_userinfo("fatal: unable to access 'https://user:tok@host/r.git/': refused",
                              url) == "fatal: unable to access 'https://host/r.git/': refused");
    CHECK(log::scrub_userinfo("bad credentials user:tok", url) == "bad credentials <redacted>");
    CHECK(log::scrub_userinfo("nothing to hide", "https://host/r.git") == "nothing to hide");
}

TEST_CASE("log::redact_url") {
    CHECK(log::redact_url("https://k:s@bucket.example/o?X-Amz-Signature=abc") ==
          "https://bucket.example/o?<redacted>");
    CHECK(log::redact_url("https://bucket.example/o") == "https://bucket.example/o");
}

TEST_CASE("escape_markup") {
    CHECK(escape_markup("a<b>&\"c'") == "a&lt;b&gt;&amp;&quot;c&#39;");
    CHECK(escape_markup("plain/text-1.0") == "plain/text-1.0");
}

TEST_CASE("sha256") {
    CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(sha256_digest("abc") ==
          "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    Sha256 h;
    h.update("a");
    h.update("bc");
    CHECK(h.finish_hex() == sha256_hex("abc"));
}

TEST_CASE("run_process") {
    SUBCASE("output, exit code, argv passed verbatim") {
        auto r = run_process(
            argv_only({"sh", "-c", "echo \"$1\"; echo err >&2; exit 3", "sh", "a b; $(x)"}));
        REQUIRE(r);
        CHECK(r->out == "a b; $(x)\n");
        CHECK(r->err_tail == "err\n");
        CHECK(r->exit_code == 3);
        CHECK_FALSE(r->ok());
    }
    SUBCASE("a timeout stops the whole process group") {
        TempDir dir;
        const auto marker = dir / "still-running";
        const auto started = std::chrono::steady_clock::now();
        ProcessSpec spec;
        spec.argv = {"sh", "-c", "(sleep 3; touch " + marker.string() + ") & sleep 30"};
        spec.timeout = 300ms;
        auto r = run_process(spec);
        REQUIRE(r);
        CHECK(r->timed_out);
        CHECK(std::chrono::steady_clock::now() - started < 10s);
        CHECK(r->describe_exit(spec.timeout) == "timed out after 0 s");
        std::this_thread::sleep_for(3500ms);
        CHECK_FALSE(std::filesystem::exists(marker)); // the grandchild died too
    }
    SUBCASE("a stall bound stops a process that stops reporting, not one that reports") {
        ProcessSpec spec;
        // Reports every 100 ms for 2.5 s, longer than the stall bound.
        spec.argv = {"sh", "-c",
                     "i=0; while [ $i -lt 25 ]; do echo $i >&2; sleep 0.1; "
                     "i=$((i+1)); done"};
        spec.stall_timeout = 1s;
        auto r = run_process(spec);
        REQUIRE(r);
        CHECK(r->ok());
        spec.argv = {"sh", "-c", "echo started >&2; sleep 30"};
        spec.stall_timeout = 300ms;
        r = run_process(spec);
        REQUIRE(r);
        CHECK(r->timed_out);
        CHECK(r->stalled);
        CHECK(r->describe_exit(spec.stall_timeout) == "no progress for 0 s");
    }
    SUBCASE("a missing program is an error, not a result") {
        auto r = run_process(argv_only({"nixery-no-such-program"}));
        CHECK_FALSE(r);
    }
    SUBCASE("environment overrides") {
        ProcessSpec spec;
        spec.argv = {"sh", "-c", "echo $NIXERY_TEST_VALUE"};
        spec.env = {"NIXERY_TEST_VALUE=42"};
        CHECK(run_process(spec)->out == "42\n");
    }
    SUBCASE("tail_lines") {
        CHECK(tail_lines("a\n\nb\nc\n", 2) == "b\nc");
        CHECK(tail_lines("", 3).empty());
    }
}

TEST_CASE("LockTable") {
    TempDir dir;
    auto table = LockTable::open(dir / "locks");
    REQUIRE(table);
    SUBCASE("exclusive between threads, independent per name") {
        auto a = table->acquire("image:x", 0ms);
        REQUIRE(a);
        REQUIRE(*a);
        CHECK_FALSE(table->try_acquire("image:x")->has_value());
        CHECK(table->try_acquire("image:y")->has_value());
        a->reset();
        CHECK(table->try_acquire("image:x")->has_value());
    }
    SUBCASE("a waiter gets the lock when the holder lets go") {
        auto held = std::move(*table->acquire("layer:z", 0ms));
        REQUIRE(held);
        std::thread releaser([&] {
            std::this_thread::sleep_for(200ms);
            held.reset();
        });
        auto waited = table->acquire("layer:z", 5s);
        releaser.join();
        REQUIRE(waited);
        CHECK(waited->has_value());
    }
    SUBCASE("shared holders exclude an exclusive one, not each other") {
        auto reader = table->acquire("gc", 0ms, LockMode::shared);
        REQUIRE(reader);
        REQUIRE(*reader);
        CHECK(table->acquire("gc", 0ms, LockMode::shared)->has_value());
        CHECK_FALSE(table->try_acquire("gc")->has_value());
        reader->reset();
        auto writer = table->try_acquire("gc");
        REQUIRE(writer->has_value());
        CHECK_FALSE(table->acquire("gc", 0ms, LockMode::shared)->has_value());
    }
    SUBCASE("a process that dies releases its locks") {
        const pid_t pid = fork();
        if (pid == 0) {
            auto t = LockTable::open(dir / "locks");
            auto l = t->acquire("image:dies", 0ms);
            (void)l;
            std::this_thread::sleep_for(300ms);
            _exit(0); // no destructor runs: the kernel releases it
        }
        std::this_thread::sleep_for(100ms);
        CHECK_FALSE(table->try_acquire("image:dies")->has_value());
        waitpid(pid, nullptr, 0);
        CHECK(table->try_acquire("image:dies")->has_value());
    }
}

TEST_CASE("ascii_lowercase and is_lower_hex") {
    CHECK(ascii_lowercase("Content-Type: ÄB") == "content-type: Äb");
    CHECK(is_lower_hex(std::string(64, 'a'), 64));
    CHECK_FALSE(is_lower_hex(std::string(64, 'A'), 64));
    CHECK_FALSE(is_lower_hex(std::string(63, 'a'), 64));
    CHECK_FALSE(is_lower_hex(std::string(39, '0') + "g", 40));
}
