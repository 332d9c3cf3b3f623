#include "builder/build_runner.hpp"

#include "builder/server_fault.hpp"
#include "cache/db.hpp"
#include "util/log.hpp"

namespace nixery {

Result<std::unique_ptr<BuilderParts>> BuilderParts::open(const PoolServices& shared) {
    TRY_ASSIGN(auto db, Db::open(shared.config.database(), shared.config.data.sql_dir));
    return std::unique_ptr<BuilderParts>(new BuilderParts(shared, BuildCache(std::move(db))));
}

BuilderParts::BuilderParts(const PoolServices& shared, BuildCache cache)
    : m_shared(shared), m_cache(std::move(cache)), m_nix(nix_settings(shared.config)),
      m_source(make_source(shared.config, m_nix)) {}

Builder BuilderParts::builder() {
    return Builder({m_shared.config, m_shared.popularity, *m_source, m_shared.storage, m_cache,
                    m_shared.locks, m_nix, m_shared.metrics});
}

JobResult BuildRunner::run(const JobSpec& job) {
    auto parts = BuilderParts::open(m_s);
    if (!parts) {
        log::error("build job failed",
                   {{"image", job.image}, {"tag", job.tag}, {"error", parts.error().message}});
        return server_fault(parts.error(), job.image);
    }
    return (*parts)->builder().build_job(job);
}

} // namespace nixery
