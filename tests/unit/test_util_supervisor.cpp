#include "util/supervisor.hpp"

#include <csignal>
#include <doctest/doctest.h>
#include <map>
#include <pthread.h>
#include <unistd.h>

using namespace nixery;
using namespace std::chrono_literals;

namespace {

// Waits until every child has exited; their exit codes by pid.
std::map<pid_t, int> reap_all(Supervisor& supervisor) {
    std::map<pid_t, int> codes;
    while (supervisor.running() > 0) {
        for (const auto& exit : supervisor.wait(100ms).exits) {
            codes[exit.pid] = exit.code();
        }
    }
    return codes;
}

} // namespace

TEST_SUITE_BEGIN("util");

TEST_CASE("Supervisor") {
    sigset_t before;
    pthread_sigmask(SIG_SETMASK, nullptr, &before);
    {
        Supervisor supervisor;
        SUBCASE("reaps its children with their exit codes") {
            const auto exits = supervisor.spawn([] { std::_Exit(3); });
            const auto missing = supervisor.spawn_program({"/nonexistent/program"});
            REQUIRE(exits);
            REQUIRE(missing);
            CHECK(supervisor.is_running(*exits));
            const auto codes = reap_all(supervisor);
            CHECK(codes.at(*exits) == 3);
            CHECK(codes.at(*missing) == 127);
            CHECK_FALSE(supervisor.is_running(*exits));
        }
        SUBCASE("children start with no signal blocked") {
            const auto child = supervisor.spawn([] {
                sigset_t now;
                sigprocmask(SIG_SETMASK, nullptr, &now);
                std::_Exit(sigismember(&now, SIGTERM) || sigismember(&now, SIGCHLD) ? 1 : 0);
            });
            REQUIRE(child);
            CHECK(reap_all(supervisor).at(*child) == 0);
        }
        SUBCASE("signal_all reaches every child; a killed child's code is minus the signal") {
            const auto a = supervisor.spawn([] {
                for (;;) {
                    ::pause();
                }
            });
            const auto b = supervisor.spawn_program({"/bin/sleep", "600"});
            REQUIRE(a);
            REQUIRE(b);
            supervisor.signal_all(SIGKILL);
            const auto codes = reap_all(supervisor);
            CHECK(codes.at(*a) == -SIGKILL);
            CHECK(codes.at(*b) == -SIGKILL);
        }
        SUBCASE("a stop signal is taken by wait(), not by a handler") {
            ::raise(SIGHUP); // blocked: pending until wait() takes it
            CHECK(supervisor.wait(10s).signal == SIGHUP);
        }
        SUBCASE("has_exited reaps one child") {
            const auto child = supervisor.spawn([] { std::_Exit(0); });
            REQUIRE(child);
            while (!supervisor.has_exited(*child)) {
                ::usleep(10'000);
            }
            CHECK(supervisor.running() == 0);
        }
    }
    pthread_sigmask(SIG_SETMASK, &before, nullptr);
}

TEST_SUITE_END();
