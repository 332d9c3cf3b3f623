#include "builder/jobs.hpp"

#include <condition_variable>
#include <doctest/doctest.h>
#include <mutex>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace nixery;

TEST_SUITE_BEGIN("builder");

namespace {

using Clock = JobBoard::Clock;

JobBoard board(int max_running, int max_queued) {
    auto b = JobBoard::create_shared({max_running, max_queued});
    REQUIRE(b);
    return std::move(*b);
}

JobSpec spec(const std::string& name) {
    return {"key-" + name, name, "latest"};
}

JobTicket join(JobBoard& b, const std::string& name) {
    auto t = b.join(spec(name));
    REQUIRE(t);
    REQUIRE(*t);
    return **t;
}

// Claims without waiting: nullopt when no job may start now.
std::optional<std::string> claim_now(JobBoard& b) {
    auto job = b.claim(Clock::now());
    if (!job) {
        return std::nullopt;
    }
    return job->second.image;
}

JobTicket claim(JobBoard& b, const std::string& expected) {
    auto job = b.claim(Clock::now());
    REQUIRE(job);
    CHECK(job->second.image == expected);
    CHECK(job->second.key == "key-" + expected);
    return job->first;
}

JobBoard::WaitResult wait_now(JobBoard& b, const JobTicket& t) {
    return b.wait(t, Clock::now(), {});
}

// A runner that records the jobs it ran and holds each until released.
class FakeRunner final : public JobRunner {
public:
    JobResult run(const JobSpec& job) override {
        std::unique_lock<std::mutex> g(m_mutex);
        m_started.push_back(job.image);
        m_changed.notify_all();
        m_changed.wait(g, [&] { return m_released > m_finished; });
        ++m_finished;
        m_changed.notify_all();
        return job.image.rfind("broken", 0) == 0 ? JobOutcome::failed : JobOutcome::succeeded;
    }
    void wait_started(std::size_t n) {
        std::unique_lock<std::mutex> g(m_mutex);
        m_changed.wait(g, [&] { return m_started.size() >= n; });
    }
    void release_one() {
        std::lock_guard<std::mutex> g(m_mutex);
        ++m_released;
        m_changed.notify_all();
    }
    void wait_finished(int n) {
        std::unique_lock<std::mutex> g(m_mutex);
        m_changed.wait(g, [&] { return m_finished >= n; });
    }
    std::vector<std::string> started() {
        std::lock_guard<std::mutex> g(m_mutex);
        return m_started;
    }

private:
    std::mutex m_mutex;
    std::condition_variable m_changed;
    std::vector<std::string> m_started;
    int m_released = 0;
    int m_finished = 0;
};

} // namespace

TEST_CASE("JobBoard::join") {
    SUBCASE("requests for one image share its job") {
        auto b = board(2, 8);
        const auto first = join(b, "a");
        const auto second = join(b, "a");
        CHECK(first.id == second.id);
        CHECK(b.counts().queued == 1);
        CHECK(b.counts().waiting == 2);
        claim(b, "a");
        CHECK(claim_now(b) == std::nullopt); // nothing else queued
    }
    SUBCASE("past max_queued, a new job is refused; joining a queued one is not") {
        auto b = board(1, 1);
        join(b, "a"); // starts as soon as it is claimed
        join(b, "b");
        auto refused = b.join(spec("c"));
        REQUIRE(refused);
        CHECK_FALSE(*refused);
        CHECK(b.join(spec("b")).value().has_value());
        const auto a = claim(b, "a");
        CHECK_FALSE(b.join(spec("c")).value().has_value());
        // A job that ends makes room.
        b.finish(a, JobOutcome::succeeded);
        CHECK(b.join(spec("c")).value().has_value());
    }
    SUBCASE("jobs that start at once do not count as queued") {
        auto b = board(2, 0);
        join(b, "a");
        join(b, "b");
        CHECK_FALSE(b.join(spec("c")).value().has_value());
        claim(b, "a");
        CHECK_FALSE(b.join(spec("c")).value().has_value());
    }
    SUBCASE("a name too long for the board is an error") {
        auto b = board(1, 1);
        CHECK_FALSE(b.join({"key", std::string(300, 'a'), "latest"}));
        // The longest name, as the arm64 job of NIXERY_PLATFORMS names it, fits.
        CHECK(b.join({"key", "arm64/" + std::string(255, 'a'), "latest"}).value().has_value());
    }
}

TEST_CASE("JobBoard::claim") {
    SUBCASE("jobs start in arrival order, at most max_running at once") {
        auto b = board(2, 8);
        join(b, "a");
        join(b, "b");
        join(b, "c");
        const auto a = claim(b, "a");
        claim(b, "b");
        CHECK(claim_now(b) == std::nullopt);
        CHECK(b.counts().running == 2);
        CHECK(b.counts().queued == 1);
        b.finish(a, JobOutcome::succeeded);
        claim(b, "c");
    }
    SUBCASE("a job of a process that died is lost to its waiters") {
        auto b = board(1, 8);
        const auto t = join(b, "a");
        const pid_t child = fork();
        if (child == 0) {
            // Claims in another process and dies without finishing.
            _exit(b.claim(Clock::now()) ? 0 : 1);
        }
        int status = 0;
        REQUIRE(waitpid(child, &status, 0) == child);
        REQUIRE(WEXITSTATUS(status) == 0);
        CHECK(b.counts().running == 1);
        CHECK(claim_now(b) == std::nullopt); // looks around: the owner is gone
        const auto w = wait_now(b, t);
        CHECK(w.how == JobBoard::Waited::ended);
        CHECK(w.outcome == JobOutcome::lost);
        // The next request queues a new job rather than joining the lost one.
        const auto again = join(b, "a");
        CHECK(again.id != t.id);
    }
    SUBCASE("a waiter of a process that died does not keep a failure for new requests") {
        auto b = board(1, 8);
        const pid_t child = fork();
        if (child == 0) {
            // Joins in another process and dies waiting (never leaves).
            _exit(b.join(spec("a")) ? 0 : 1);
        }
        int status = 0;
        REQUIRE(waitpid(child, &status, 0) == child);
        REQUIRE(WEXITSTATUS(status) == 0);
        const auto t = join(b, "a");
        b.finish(claim(b, "a"), JobResult(fault("building \"a\" failed on the server", "killed")));
        CHECK(wait_now(b, t).outcome == JobOutcome::failed);
        b.leave(t, Leaving::done);
        // Right after the end a request may still join it (the cache was
        // looked at just before); later ones start afresh.
        CHECK(join(b, "a").id == t.id);
        std::this_thread::sleep_for(std::chrono::milliseconds(2200));
        const auto later = join(b, "a");
        CHECK(later.id != t.id);
        CHECK(wait_now(b, later).how == JobBoard::Waited::timed_out); // queued, not failed
    }
}

TEST_CASE("JobBoard::wait") {
    auto b = board(1, 8);
    const auto t = join(b, "a");
    SUBCASE("a queued or running job times out at the deadline") {
        CHECK(wait_now(b, t).how == JobBoard::Waited::timed_out);
        const auto running = claim(b, "a");
        CHECK(wait_now(b, t).how == JobBoard::Waited::timed_out);
        b.finish(running, JobOutcome::succeeded);
        const auto w = wait_now(b, t);
        CHECK(w.how == JobBoard::Waited::ended);
        CHECK(w.outcome == JobOutcome::succeeded);
    }
    SUBCASE("a failure reaches every waiter, also one that joins after the end") {
        const auto running = claim(b, "a");
        b.finish(running, JobOutcome::failed);
        CHECK(wait_now(b, t).outcome == JobOutcome::failed);
        const auto late = join(b, "a");
        CHECK(late.id == t.id);
        const auto w = wait_now(b, late);
        CHECK(w.how == JobBoard::Waited::ended);
        CHECK(w.outcome == JobOutcome::failed);
        b.leave(t, Leaving::done);
        b.leave(late, Leaving::done);
        CHECK(b.counts().waiting == 0);
        // Read by everyone: the next request starts afresh.
        CHECK(join(b, "a").id != t.id);
    }
    SUBCASE("a failed job's failure reaches its waiters, cut to fit, without internal text") {
        const auto running = claim(b, "a");
        Failure f = fault("building \"a\" failed on the server: database or disk is full",
                          "sqlite \"INSERT\" failed: database or disk is full");
        f.detail = R"({"log":")" + std::string(8000, 'x') + R"("})";
        b.finish(running, JobResult(f));
        auto w = wait_now(b, t);
        CHECK(w.outcome == JobOutcome::failed);
        REQUIRE(w.failure);
        CHECK(w.failure->kind == FailureKind::fault);
        CHECK(w.failure->message == f.message);
        CHECK(w.failure->what == "server fault");
        CHECK(w.failure->internal.empty());
        CHECK(w.failure->detail.empty()); // too long to keep whole
        CHECK(w.failure->remembered);     // the job logged it

        b.leave(t, Leaving::done);
        const auto next = join(b, "a");
        b.finish(claim(b, "a"), JobResult(busy(std::string(6000, 'm') + "é", 30)));
        w = wait_now(b, next);
        REQUIRE(w.failure);
        CHECK(w.failure->kind == FailureKind::busy);
        CHECK(w.failure->retry_after == 30);
        CHECK(w.failure->message.size() < 4096);
        CHECK(w.failure->message.substr(w.failure->message.size() - 3) == "…");
    }
    SUBCASE("an outcome alone carries no failure") {
        b.finish(claim(b, "a"), JobOutcome::failed);
        CHECK_FALSE(wait_now(b, t).failure);
    }
    SUBCASE("a waiter gives up when asked to") {
        int asked = 0;
        const auto w = b.wait(t, Clock::now() + std::chrono::hours(1), [&] { return ++asked > 0; });
        CHECK(w.how == JobBoard::Waited::given_up);
        CHECK(asked == 1);
    }
}

TEST_CASE("JobBoard::leave") {
    auto b = board(1, 8);
    SUBCASE("a queued job is dropped when its last waiter has gone") {
        const auto one = join(b, "a");
        const auto two = join(b, "a");
        b.leave(one, Leaving::gone);
        CHECK(b.counts().queued == 1);
        b.leave(two, Leaving::gone);
        CHECK(b.counts().queued == 0);
        CHECK(claim_now(b) == std::nullopt);
    }
    SUBCASE("a running job runs on without waiters") {
        const auto t = join(b, "a");
        const auto running = claim(b, "a");
        b.leave(t, Leaving::gone);
        CHECK(b.counts().running == 1);
        b.finish(running, JobOutcome::succeeded);
        CHECK(b.counts().running == 0);
    }
    SUBCASE("a HEAD answered early keeps its queued job for the GET") {
        const auto head = join(b, "a");
        b.leave(head, Leaving::revisit);
        CHECK(b.counts().queued == 1);
        const auto get = join(b, "a");
        CHECK(get.id == head.id);
        claim(b, "a");
    }
    SUBCASE("a queued job kept for a revisit still starts when nobody came") {
        const auto head = join(b, "a");
        b.leave(head, Leaving::revisit);
        claim(b, "a");
    }
}

TEST_CASE("JobBoard: gauges and queue wait in the metrics") {
    auto metrics = Metrics::create_shared();
    REQUIRE(metrics);
    auto b = board(1, 8);
    b.report_to(&*metrics);
    join(b, "a");
    join(b, "a");
    join(b, "b");
    claim(b, "a");
    const auto text = metrics->render();
    CHECK(text.find("\nnixery_builds_running 1\n") != std::string::npos);
    CHECK(text.find("\nnixery_builds_queued 1\n") != std::string::npos);
    CHECK(text.find("\nnixery_requests_waiting 3\n") != std::string::npos);
    CHECK(text.find("\nnixery_build_queue_wait_seconds_count 1\n") != std::string::npos);
}

TEST_CASE("JobDispatcher") {
    auto b = board(1, 8);
    FakeRunner runner;
    JobDispatcher dispatcher(b, runner);
    SUBCASE("runs jobs one at a time in arrival order, each to its end") {
        const auto a = join(b, "a");
        const auto broken = join(b, "broken");
        const auto c = join(b, "c");
        runner.wait_started(1);
        // Its waiter has gone: the started job runs on all the same.
        b.leave(a, Leaving::gone);
        CHECK(runner.started() == std::vector<std::string>{"a"});
        runner.release_one();
        runner.wait_started(2);
        runner.release_one();
        const auto w = b.wait(broken, Clock::now() + std::chrono::hours(1), {});
        CHECK(w.outcome == JobOutcome::failed);
        runner.wait_started(3);
        runner.release_one();
        CHECK(b.wait(c, Clock::now() + std::chrono::hours(1), {}).outcome == JobOutcome::succeeded);
        runner.wait_finished(3);
        CHECK(runner.started() == std::vector<std::string>{"a", "broken", "c"});
        b.leave(broken, Leaving::done);
        b.leave(c, Leaving::done);
    }
    SUBCASE("a job dropped from the queue never runs") {
        const auto a = join(b, "a");
        const auto dropped = join(b, "dropped");
        runner.wait_started(1);
        b.leave(dropped, Leaving::gone);
        const auto d = join(b, "d");
        runner.release_one();
        runner.wait_started(2);
        runner.release_one();
        CHECK(b.wait(d, Clock::now() + std::chrono::hours(1), {}).outcome == JobOutcome::succeeded);
        CHECK(runner.started() == std::vector<std::string>{"a", "d"});
        b.leave(a, Leaving::done);
        b.leave(d, Leaving::done);
    }
    dispatcher.stop();
}

TEST_CASE("JobBoard: a job queued into a freed slot waits behind older jobs") {
    // The queue is in order of joining, not of slots: d takes the slot b
    // left, lower than c's, and still runs after c.
    auto b = board(1, 8);
    join(b, "a");
    const auto bt = join(b, "b");
    join(b, "c");
    const auto a = claim(b, "a");
    b.leave(bt, Leaving::gone);
    join(b, "d");
    b.finish(a, JobOutcome::succeeded);
    const auto c = claim(b, "c");
    b.finish(c, JobOutcome::succeeded);
    claim(b, "d");
}

TEST_CASE("JobBoard: a GET that hangs up within its HEAD's grace leaves the job queued") {
    auto b = board(1, 8);
    join(b, "a");
    const auto a = claim(b, "a");
    const auto head = join(b, "b");
    b.leave(head, Leaving::revisit);
    const auto get = join(b, "b");
    CHECK(get.id == head.id);
    b.leave(get, Leaving::gone);
    CHECK(b.counts().queued == 1);
    b.finish(a, JobOutcome::succeeded);
    claim(b, "b");
}

TEST_CASE("JobBoard: a failure's message cut inside a UTF-8 sequence is cut before it") {
    auto b = board(1, 8);
    const auto t = join(b, "a");
    std::string message(4091, 'm');
    for (int i = 0; i < 100; ++i) {
        message += "\u00e9";
    }
    b.finish(claim(b, "a"), JobResult(busy(message, 30)));
    const auto w = wait_now(b, t);
    REQUIRE(w.failure);
    CHECK(w.failure->message == std::string(4091, 'm') + "\u2026");
}

TEST_SUITE_END();
