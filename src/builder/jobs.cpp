#include "builder/jobs.hpp"

#include "util/files.hpp"
#include "util/log.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <linux/futex.h>
#include <mutex>
#include <new>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <thread>
#include <unistd.h>

namespace nixery {

namespace {

enum class SlotState : std::uint8_t { free, queued, running, ended };

constexpr std::size_t k_key_size = 80;
// core/reference.hpp: names up to 255, and "arm64/" before one (the arm64
// job of a name under NIXERY_PLATFORMS, core/platform.hpp).
constexpr std::size_t k_image_size = 264;
constexpr std::size_t k_tag_size = 136;       // tags up to 128
constexpr std::size_t k_request_id_size = 40; // 32 hex digits
// A failed job's failure: Nix's last lines fit; longer text is cut.
constexpr std::size_t k_failure_what_size = 64;
constexpr std::size_t k_failure_text_size = 4096;

// How often a waiter or the dispatcher looks around even when nothing was
// signalled: for a client that hung up, a process that died.
constexpr auto k_poll = std::chrono::milliseconds(200);
// An ended job whose waiters never came back for it (their process died).
constexpr auto k_ended_kept = std::chrono::minutes(10);
// How long after its end a job still takes new waiters (a request that
// looked in the cache just before the job recorded its result). Not longer:
// waiters of a process that died never leave, and a job they keep on the
// board must not answer new requests with its old failure.
constexpr auto k_ended_joinable = std::chrono::seconds(2);

struct Slot {
    SlotState state;
    JobOutcome outcome;
    std::uint64_t id; // unique per job, never reused
    int waiters;
    pid_t owner;             // the process running it
    std::int64_t queued_at;  // steady clock, ns
    std::int64_t keep_until; // steady clock, ns: Leaving::revisit
    std::int64_t ended_at;   // steady clock, ns
    char key[k_key_size];
    char image[k_image_size];
    char tag[k_tag_size];
    char request_id[k_request_id_size]; // of the request that queued it
    // The failure of a failed job, for its waiters.
    bool failed_with;
    FailureKind failure_kind;
    int failure_retry_after;
    char failure_what[k_failure_what_size];
    char failure_message[k_failure_text_size];
    char failure_detail[k_failure_text_size]; // empty when it did not fit
};

std::int64_t ns(JobBoard::Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

bool copy_text(char* to, std::size_t size, std::string_view from) {
    if (from.size() >= size) {
        return false;
    }
    std::memcpy(to, from.data(), from.size());
    to[from.size()] = '\0';
    return true;
}

// `from`, cut to fit `size` bytes with its NUL (marked with "…" when cut).
void copy_cut(char* to, std::size_t size, std::string_view from) {
    if (copy_text(to, size, from)) {
        return;
    }
    constexpr std::string_view mark = "…";
    auto keep = size - 1 - mark.size();
    while (keep > 0 && (static_cast<unsigned char>(from[keep]) & 0xC0) == 0x80) {
        --keep; // not inside a UTF-8 sequence
    }
    std::memcpy(to, from.data(), keep);
    std::memcpy(to + keep, mark.data(), mark.size());
    to[keep + mark.size()] = '\0';
}

// The failure a slot holds, for a waiter.
std::optional<Failure> slot_failure(const Slot& slot) {
    if (slot.outcome != JobOutcome::failed || !slot.failed_with) {
        return std::nullopt;
    }
    Failure f{slot.failure_kind, slot.failure_what, slot.failure_message, slot.failure_detail, {}};
    f.retry_after = slot.failure_retry_after;
    f.remembered = true; // the runner logged it
    return f;
}

// Wakes everyone waiting for a change of the board, in any process.
void notify(std::atomic<std::uint32_t>& changes) {
    changes.fetch_add(1);
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&changes), FUTEX_WAKE, INT_MAX, nullptr,
              nullptr, 0);
}

// A slot's state is written after its other fields, also in the order of
// the machine's stores: a process killed while holding the board's lock
// (recover()) leaves a slot either as it was or complete.
void set_state(Slot& slot, SlotState state) {
    std::atomic_signal_fence(std::memory_order_release);
    slot.state = state;
}

bool process_gone(pid_t pid) {
    return ::kill(pid, 0) != 0 && errno == ESRCH;
}

} // namespace

using ChangeCount = std::atomic<std::uint32_t>;
// A futex word: the kernel waits on its 32 bits.
static_assert(sizeof(ChangeCount) == sizeof(std::uint32_t) && ChangeCount::is_always_lock_free);

struct JobBoard::Shared {
    pthread_mutex_t mutex;
    // Counts changes of any slot; waiters sleep on it with futex(2). Not a
    // process-shared condition variable: one whose waiter was killed blocks
    // the next broadcast for good (glibc waits for every waiter of a group
    // to wake up).
    ChangeCount changes;
    JobLimits limits;
    int capacity;
    std::uint64_t next_id;
    Slot slots[1]; // `capacity` of them
};

namespace {

// The board's mutex, recovering it when its holder died.
class BoardLock {
public:
    explicit BoardLock(pthread_mutex_t& m) : m_mutex(m) { recover(pthread_mutex_lock(&m_mutex)); }
    ~BoardLock() { pthread_mutex_unlock(&m_mutex); }
    BoardLock(const BoardLock&) = delete;
    BoardLock& operator=(const BoardLock&) = delete;

    // Lets go of the board until its change count moves or `until` passed
    // (or a signal came), then takes it again.
    void wait(ChangeCount& changes, JobBoard::Clock::time_point until) {
        const auto seen = changes.load();
        pthread_mutex_unlock(&m_mutex);
        const auto left =
            std::chrono::duration_cast<std::chrono::nanoseconds>(until - JobBoard::Clock::now())
                .count();
        if (left > 0) {
            timespec ts{static_cast<time_t>(left / 1'000'000'000),
                        static_cast<long>(left % 1'000'000'000)};
            ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&changes), FUTEX_WAIT, seen, &ts,
                      nullptr, 0);
        }
        recover(pthread_mutex_lock(&m_mutex));
    }

private:
    void recover(int rc) {
        if (rc == EOWNERDEAD) {
            // A holder that died left the slots consistent: a slot's
            // other fields are written before its state (set_state).
            pthread_mutex_consistent(&m_mutex);
        }
    }
    pthread_mutex_t& m_mutex;
};

} // namespace

Result<JobBoard> JobBoard::create_shared(JobLimits limits) {
    limits.max_running = std::max(1, limits.max_running);
    limits.max_queued = std::max(0, limits.max_queued);
    // Room for every queued and running job, and as many that ended and
    // whose waiters are still reading the result.
    const int capacity = 2 * (limits.max_running + limits.max_queued) + 8;
    const std::size_t bytes = sizeof(Shared) + sizeof(Slot) * static_cast<std::size_t>(capacity);
    void* memory =
        ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) {
        return fail("mmap of the shared job board failed: " + errno_text(errno));
    }
    auto* s = static_cast<Shared*>(memory); // zero-filled: every slot is free
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&s->mutex, &ma);
    pthread_mutexattr_destroy(&ma);
    new (&s->changes) ChangeCount(0);
    s->limits = limits;
    s->capacity = capacity;
    s->next_id = 1;
    return JobBoard(s, bytes, nullptr);
}

JobBoard::JobBoard(JobBoard&& o) noexcept
    : m_shared(o.m_shared), m_bytes(o.m_bytes), m_metrics(o.m_metrics) {
    o.m_shared = nullptr;
}

JobBoard::~JobBoard() {
    if (m_shared != nullptr) {
        ::munmap(m_shared, m_bytes);
    }
}

namespace {

// The job of `key` that a new waiter can join: queued, running, or ended
// with a result to read.
Slot* find_key(Slot* slots, int capacity, std::string_view key, std::int64_t now) {
    for (int i = 0; i < capacity; ++i) {
        auto& slot = slots[i];
        if (slot.state != SlotState::free && key == slot.key &&
            !(slot.state == SlotState::ended &&
              (slot.outcome == JobOutcome::lost ||
               now - slot.ended_at > std::chrono::nanoseconds(k_ended_joinable).count()))) {
            return &slot;
        }
    }
    return nullptr;
}

} // namespace

Result<std::optional<JobTicket>> JobBoard::join(const JobSpec& spec) {
    if (spec.key.size() >= k_key_size || spec.image.size() >= k_image_size ||
        spec.tag.size() >= k_tag_size) {
        return fail("queueing the build of \"" + spec.image + "\" failed: name too long");
    }
    auto& s = *m_shared;
    BoardLock lock(s.mutex);
    if (auto* slot = find_key(s.slots, s.capacity, spec.key, ns(Clock::now()))) {
        ++slot->waiters;
        publish();
        return std::optional<JobTicket>(JobTicket{static_cast<int>(slot - s.slots), slot->id});
    }
    int queued = 0;
    int running = 0;
    Slot* free_slot = nullptr;
    for (int i = 0; i < s.capacity; ++i) {
        auto& slot = s.slots[i];
        queued += slot.state == SlotState::queued ? 1 : 0;
        running += slot.state == SlotState::running ? 1 : 0;
        if (slot.state == SlotState::free && free_slot == nullptr) {
            free_slot = &slot;
        }
    }
    // Queued jobs that free slots will start at once do not count against
    // max_queued.
    const int starting = std::max(0, s.limits.max_running - running);
    if (queued >= s.limits.max_queued + starting || free_slot == nullptr) {
        return std::optional<JobTicket>();
    }
    auto& slot = *free_slot;
    slot = Slot{}; // free until the state is set, last
    slot.id = s.next_id++;
    slot.waiters = 1;
    slot.queued_at = ns(Clock::now());
    copy_text(slot.key, k_key_size, spec.key);
    copy_text(slot.image, k_image_size, spec.image);
    copy_text(slot.tag, k_tag_size, spec.tag);
    if (!copy_text(slot.request_id, k_request_id_size, spec.request_id)) {
        slot.request_id[0] = '\0';
    }
    set_state(slot, SlotState::queued);
    publish();
    notify(s.changes);
    return std::optional<JobTicket>(JobTicket{static_cast<int>(free_slot - s.slots), slot.id});
}

JobBoard::WaitResult JobBoard::wait(const JobTicket& ticket, Clock::time_point until,
                                    const std::function<bool()>& give_up) {
    auto& s = *m_shared;
    for (;;) {
        {
            BoardLock lock(s.mutex);
            const auto& slot = s.slots[ticket.slot];
            if (slot.id != ticket.id) {
                return {Waited::ended, JobOutcome::lost, {}}; // cannot happen while held
            }
            if (slot.state == SlotState::ended) {
                return {Waited::ended, slot.outcome, slot_failure(slot)};
            }
            const auto now = Clock::now();
            if (now >= until) {
                return {Waited::timed_out, JobOutcome::lost, {}};
            }
            lock.wait(s.changes, std::min(until, now + k_poll));
            if (slot.state == SlotState::ended) {
                return {Waited::ended, slot.outcome, slot_failure(slot)};
            }
        }
        if (give_up && give_up()) {
            return {Waited::given_up, JobOutcome::lost, {}};
        }
    }
}

void JobBoard::leave(const JobTicket& ticket, Leaving how) {
    auto& s = *m_shared;
    BoardLock lock(s.mutex);
    auto& slot = s.slots[ticket.slot];
    if (slot.id != ticket.id || slot.state == SlotState::free) {
        return;
    }
    slot.waiters = std::max(0, slot.waiters - 1);
    if (how == Leaving::revisit) {
        slot.keep_until =
            std::max(slot.keep_until, ns(Clock::now() + std::chrono::seconds(k_revisit_grace)));
    }
    if (slot.waiters == 0) {
        if (slot.state == SlotState::ended) {
            slot.state = SlotState::free;
        } else if (slot.state == SlotState::queued && how != Leaving::revisit &&
                   ns(Clock::now()) >= slot.keep_until) {
            log::info(
                "queued build dropped: nobody waits for it",
                {{"image", std::string_view(slot.image)}, {"tag", std::string_view(slot.tag)}});
            slot.state = SlotState::free;
        }
    }
    publish();
    notify(s.changes);
}

std::optional<std::pair<JobTicket, JobSpec>> JobBoard::claim(Clock::time_point until) {
    auto& s = *m_shared;
    BoardLock lock(s.mutex);
    for (;;) {
        const auto now = ns(Clock::now());
        int running = 0;
        Slot* oldest = nullptr;
        bool changed = false;
        for (int i = 0; i < s.capacity; ++i) {
            auto& slot = s.slots[i];
            if (slot.state == SlotState::running && process_gone(slot.owner)) {
                log::warn("a build's worker process died; its waiters get an error",
                          {{"image", std::string_view(slot.image)}});
                slot.outcome = JobOutcome::lost;
                slot.ended_at = now;
                set_state(slot, SlotState::ended);
                changed = true;
            }
            if (slot.state == SlotState::ended &&
                (slot.waiters == 0 ||
                 now - slot.ended_at > std::chrono::nanoseconds(k_ended_kept).count())) {
                slot.state = SlotState::free;
                changed = true;
            }
            if (slot.state == SlotState::queued && slot.waiters == 0 && now >= slot.keep_until) {
                log::info("queued build dropped: nobody waits for it",
                          {{"image", std::string_view(slot.image)}});
                slot.state = SlotState::free;
                changed = true;
            }
            running += slot.state == SlotState::running ? 1 : 0;
            if (slot.state == SlotState::queued && (oldest == nullptr || slot.id < oldest->id)) {
                oldest = &slot;
            }
        }
        if (oldest != nullptr && running < s.limits.max_running) {
            oldest->owner = ::getpid();
            set_state(*oldest, SlotState::running);
            if (m_metrics != nullptr) {
                m_metrics->observe_queue_wait(static_cast<double>(now - oldest->queued_at) / 1e9);
            }
            publish();
            notify(s.changes);
            return std::make_pair(
                JobTicket{static_cast<int>(oldest - s.slots), oldest->id},
                JobSpec{oldest->key, oldest->image, oldest->tag, oldest->request_id});
        }
        if (changed) {
            publish();
            notify(s.changes);
        }
        const auto t = Clock::now();
        if (t >= until) {
            return std::nullopt;
        }
        lock.wait(s.changes, std::min(until, t + k_poll * 5));
    }
}

void JobBoard::finish(const JobTicket& ticket, const JobResult& result) {
    auto& s = *m_shared;
    BoardLock lock(s.mutex);
    auto& slot = s.slots[ticket.slot];
    if (slot.id != ticket.id || slot.state != SlotState::running) {
        return;
    }
    slot.outcome = result.outcome;
    slot.failed_with = result.failure.has_value();
    if (const auto& f = result.failure) {
        slot.failure_kind = f->kind;
        slot.failure_retry_after = f->retry_after;
        copy_cut(slot.failure_what, k_failure_what_size, f->what);
        copy_cut(slot.failure_message, k_failure_text_size, f->message);
        // A detail cut short would not be JSON any more.
        if (!copy_text(slot.failure_detail, k_failure_text_size, f->detail)) {
            slot.failure_detail[0] = '\0';
        }
    }
    slot.ended_at = ns(Clock::now());
    set_state(slot, slot.waiters > 0 ? SlotState::ended : SlotState::free);
    publish();
    notify(s.changes);
}

JobBoard::Counts JobBoard::counts() const {
    auto& s = *m_shared;
    BoardLock lock(s.mutex);
    Counts c;
    for (int i = 0; i < s.capacity; ++i) {
        const auto& slot = s.slots[i];
        c.running += slot.state == SlotState::running ? 1 : 0;
        c.queued += slot.state == SlotState::queued ? 1 : 0;
        c.waiting += slot.state != SlotState::free ? slot.waiters : 0;
    }
    return c;
}

void JobBoard::report_to(Metrics* metrics) {
    m_metrics = metrics;
    BoardLock lock(m_shared->mutex);
    publish();
}

void JobBoard::publish() const {
    if (m_metrics == nullptr) {
        return;
    }
    Counts c;
    const auto& s = *m_shared;
    for (int i = 0; i < s.capacity; ++i) {
        const auto& slot = s.slots[i];
        c.running += slot.state == SlotState::running ? 1 : 0;
        c.queued += slot.state == SlotState::queued ? 1 : 0;
        c.waiting += slot.state != SlotState::free ? slot.waiters : 0;
    }
    m_metrics->set_build_queue(c.running, c.queued, c.waiting);
}

// --- dispatcher --------------------------------------------------------------

struct JobDispatcher::State {
    JobBoard& board;
    JobRunner& runner;
    std::atomic<bool> stopping{false};
    std::mutex mutex;
    std::condition_variable idle;
    int running = 0; // jobs of this process
    std::thread claimer;
};

JobDispatcher::JobDispatcher(JobBoard& board, JobRunner& runner)
    : m_state(new State{board, runner, {}, {}, {}, 0, {}}) {
    auto* st = m_state;
    st->claimer = std::thread([st] {
        while (!st->stopping.load()) {
            auto job = st->board.claim(JobBoard::Clock::now() + std::chrono::seconds(1));
            if (!job) {
                continue;
            }
            {
                std::lock_guard<std::mutex> g(st->mutex);
                ++st->running;
            }
            const auto ticket = job->first;
            const auto image = job->second.image;
            try {
                start_job(st, std::move(*job));
            } catch (const std::system_error& e) {
                // Out of threads (TasksMax, RLIMIT_NPROC): the job fails
                // with a server fault, not the whole worker with it.
                log::error("no thread for a build job", {{"image", image}, {"error", e.what()}});
                st->board.finish(
                    ticket,
                    fault("building \"" + image + "\" failed: the server is out of threads", {}));
                std::lock_guard<std::mutex> g(st->mutex);
                --st->running;
                st->idle.notify_all();
            }
        }
    });
}

// The job on a thread of its own, which finishes it.
void JobDispatcher::start_job(State* st, std::pair<JobTicket, JobSpec> job) {
    std::thread([st, job = std::move(job)] {
        JobResult result(JobOutcome::failed);
        try {
            result = st->runner.run(job.second);
        } catch (const std::exception& e) {
            log::error("build job failed", {{"image", job.second.image}, {"error", e.what()}});
            result = fault("building \"" + job.second.image + "\" failed on the server", {});
        }
        st->board.finish(job.first, result);
        std::lock_guard<std::mutex> g(st->mutex);
        --st->running;
        st->idle.notify_all();
    }).detach();
}

void JobDispatcher::stop() {
    if (m_state == nullptr) {
        return;
    }
    m_state->stopping = true;
    if (m_state->claimer.joinable()) {
        m_state->claimer.join();
    }
    std::unique_lock<std::mutex> g(m_state->mutex);
    m_state->idle.wait(g, [this] { return m_state->running == 0; });
}

int JobDispatcher::running() const {
    std::lock_guard<std::mutex> g(m_state->mutex);
    return m_state->running;
}

JobDispatcher::~JobDispatcher() {
    stop();
    delete m_state;
}

} // namespace nixery
