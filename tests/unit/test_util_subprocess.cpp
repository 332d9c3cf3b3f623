#include "testutil.hpp"
#include "util/subprocess.hpp"

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

TEST_SUITE_END();
