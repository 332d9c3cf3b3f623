// Image builds as jobs, shared by every process of one `nixery serve`: the
// board of jobs queued, running and just ended, kept in memory that the
// master maps (MAP_SHARED) before it forks its workers, under one
// process-shared robust mutex (a worker killed while holding it leaves it
// recoverable, not locked).
//
// A request for an image nobody has built joins the image's job (one job per
// image key: any number of requests, in any worker process, wait on the same
// one) or queues a new one. Each worker process runs a dispatcher that claims
// the oldest queued job while fewer than max_running run across the pool and
// runs it on a thread of its own, detached from every request: it runs to its
// end even when everyone waiting has gone, so a retry finds the result.
// A queued job that nobody waits for any more is dropped before it starts.
//
//   join ──▶ queued ──claim──▶ running ──finish──▶ ended ──last leave──▶ free
//              │ last waiter gone
//              ▼
//            dropped (free)
//
// The board holds no images: a job's runner records the image (or the
// failure) in the cache, and a waiter reads it from there once the job ended.
// It does keep a failed job's failure (core/failure.hpp, cut to fit a slot)
// for its waiters, who get it also when the cache could not record it (a
// full disk). This file must not know about Nix, HTTP or the cache.
#pragma once

#include "core/failure.hpp"
#include "metrics/metrics.hpp"
#include "util/result.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace nixery {

// What a job builds. `key` identifies the image (core/cache_keys.hpp);
// `image` and `tag` are what the first request asked for.
struct JobSpec {
    std::string key;
    std::string image;
    std::string tag;
    // The request that queued the job: its log lines carry this id, which
    // the client's error quotes.
    std::string request_id{};
};

enum class JobOutcome : std::uint8_t {
    succeeded, // the runner recorded the image
    failed,    // the runner remembered the failure
    lost,      // the process running it died
};

// How a job ended: its outcome and, when it failed, what its waiters are
// told (without the internal text, which the runner logged).
struct JobResult {
    JobOutcome outcome = JobOutcome::failed;
    std::optional<Failure> failure;

    JobResult(JobOutcome o) : outcome(o) {} // NOLINT: an outcome alone is a result
    JobResult(Failure f) : outcome(JobOutcome::failed), failure(std::move(f)) {} // NOLINT
};

// Runs one job to its end (a build with Nix, in production). Called on a
// thread of its own; must not throw.
class JobRunner {
public:
    virtual ~JobRunner() = default;
    virtual JobResult run(const JobSpec& job) = 0;
};

struct JobLimits {
    int max_running = 1;
    int max_queued = 64;
};

// A waiter's hold on a job.
struct JobTicket {
    int slot = -1;
    std::uint64_t id = 0;
};

// How a waiter lets go of its job.
enum class Leaving {
    done,    // it has its answer (or gave up on a running job)
    gone,    // its client hung up: a queued job nobody else waits for is dropped
    revisit, // answered a HEAD early: keep the queued job a while for the GET that follows
};

class JobBoard {
public:
    using Clock = std::chrono::steady_clock;

    // A board in memory that processes forked after this call share.
    static Result<JobBoard> create_shared(JobLimits limits);
    JobBoard(JobBoard&& o) noexcept;
    JobBoard& operator=(JobBoard&&) = delete;
    JobBoard(const JobBoard&) = delete;
    ~JobBoard();

    // Waits on the job building spec.key, queueing it when there is none.
    // nullopt: the queue is full (max_queued jobs wait already); the caller
    // should answer 429. An error: the spec does not fit the board.
    Result<std::optional<JobTicket>> join(const JobSpec& spec);

    enum class Waited { ended, timed_out, given_up };
    struct WaitResult {
        Waited how = Waited::timed_out;
        JobOutcome outcome = JobOutcome::lost; // when ended
        std::optional<Failure> failure;        // when it failed: marked `remembered`
    };
    // Waits until the ticket's job has ended or `until` passed, asking
    // `give_up` now and then (a client that hung up, a worker that drains).
    WaitResult wait(const JobTicket& ticket, Clock::time_point until,
                    const std::function<bool()>& give_up);
    // Ends the ticket's hold on its job. Every joined ticket leaves once.
    void leave(const JobTicket& ticket, Leaving how);

    // Dispatcher side: claims, for this process, the oldest queued job that
    // someone waits for, once fewer than max_running jobs run; waits until
    // `until` for one. Also drops abandoned jobs and marks the jobs of dead
    // processes lost.
    std::optional<std::pair<JobTicket, JobSpec>> claim(Clock::time_point until);
    // The claimed job has ended with `result`; wakes its waiters.
    void finish(const JobTicket& ticket, const JobResult& result);

    struct Counts {
        int running = 0;
        int queued = 0;
        int waiting = 0; // requests holding a ticket
    };
    Counts counts() const;
    // Where the board reports its gauges and queue waits (shared metrics:
    // set before forking); none by default.
    void report_to(Metrics* metrics);

    // How long a queued job stays without waiters after Leaving::revisit.
    static constexpr std::chrono::seconds k_revisit_grace{30};

private:
    struct Shared;
    JobBoard(Shared* shared, std::size_t bytes, Metrics* metrics)
        : m_shared(shared), m_bytes(bytes), m_metrics(metrics) {}
    void publish() const; // gauges into m_metrics; under the mutex

    Shared* m_shared;
    std::size_t m_bytes;
    Metrics* m_metrics;
};

// Runs the board's jobs from one process: a thread that claims jobs and a
// thread per claimed job. stop() claims no more and waits for the jobs this
// process runs to end.
class JobDispatcher {
public:
    JobDispatcher(JobBoard& board, JobRunner& runner);
    ~JobDispatcher();
    JobDispatcher(const JobDispatcher&) = delete;
    JobDispatcher& operator=(const JobDispatcher&) = delete;

    void stop();
    // How many jobs this process runs now.
    int running() const;

private:
    struct State;
    static void start_job(State* st, std::pair<JobTicket, JobSpec> job);
    State* m_state;
};

} // namespace nixery
