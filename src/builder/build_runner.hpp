// The production JobRunner: builds an image with the Builder, on the job's
// own thread with its own database connection and package source (a job
// shares nothing per-thread with the request that queued it).
#pragma once

#include "builder/builder.hpp"
#include "builder/jobs.hpp"

#include <memory>

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

// What a Builder uses that each thread has of its own: a database
// connection, Nix and the package source. Builders made here share the
// process's PoolServices; they must not outlive this.
class BuilderParts {
public:
    static Result<std::unique_ptr<BuilderParts>> open(const PoolServices& shared);

    Builder builder();
    BuildCache& cache() { return m_cache; }

private:
    BuilderParts(const PoolServices& shared, BuildCache cache);

    PoolServices m_shared;
    BuildCache m_cache;
    Nix m_nix;
    std::unique_ptr<PackageSource> m_source; // uses m_nix
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
