#include "testutil.hpp"
#include "util/lock.hpp"
#include "util/subprocess.hpp"

#include <chrono>
#include <doctest/doctest.h>
#include <thread>

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

TEST_SUITE_BEGIN("util");

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
    SUBCASE("the OOM killer takes a helper before the process that ran it") {
        auto r = run_process(argv_only({"cat", "/proc/self/oom_score_adj"}));
        REQUIRE(r);
        CHECK(r->out == "500\n");
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

TEST_CASE("run_process: keep_fd hands a lock to the process and what it leaves behind") {
    testutil::TempDir dir;
    const auto table = LockTable::open(dir / "locks");
    REQUIRE(table);
    auto lock = table->try_acquire("git-fetch:x");
    REQUIRE(lock);
    REQUIRE(*lock);
    ProcessSpec spec;
    // fd 3 is there and no other; a process left behind (out of the group,
    // which run_process kills at the end, as a worker that dies cannot; the
    // pause lets it leave first) holds the lock on.
    spec.argv = {"sh", "-c",
                 "test -e /proc/self/fd/3 && ! test -e /proc/self/fd/4 || exit 3; "
                 "(setsid sleep 2 <&- >&- 2>&- &); sleep 0.3; exit 0"};
    spec.keep_fd = (*lock)->fd();
    const auto run = run_process(spec);
    REQUIRE(run);
    CHECK(run->exit_code == 0);
    lock->reset(); // the caller lets go (a worker that died)
    const auto taken = table->try_acquire("git-fetch:x");
    REQUIRE(taken);
    CHECK_FALSE(*taken); // still held by the sleep
    bool freed = false;
    for (int i = 0; i < 50 && !freed; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        auto again = table->try_acquire("git-fetch:x");
        freed = again && *again;
    }
    CHECK(freed);
}

TEST_SUITE_END();
