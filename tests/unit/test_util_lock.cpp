#include "testutil.hpp"
#include "util/lock.hpp"

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace nixery;
using namespace std::chrono_literals;
using testutil::TempDir;

TEST_SUITE_BEGIN("util");

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

TEST_SUITE_END();
