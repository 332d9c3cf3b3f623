// The production JobRunner: builds an image with the Builder, on the job's
// own thread with its own database connection and package source (a job
// shares nothing per-thread with the request that queued it).
#pragma once

#include "builder/builder.hpp"
#include "builder/jobs.hpp"

namespace nixery {

// What every thread and job of a worker process shares (owned by the
// process).
struct PoolServices {
    const Config& config;
    const Popularity& popularity;
    StorageBackend& storage;
    const LockTable& locks;
    Metrics& metrics;
};

class BuildRunner final : public JobRunner {
public:
    explicit BuildRunner(PoolServices services) : m_s(services) {}
    // Succeeded: the image is recorded; failed: the failure is remembered
    // (or, if the database cannot be opened, logged).
    JobResult run(const JobSpec& job) override;

private:
    PoolServices m_s;
};

} // namespace nixery
