#include "builder/build_runner.hpp"

#include "builder/server_fault.hpp"
#include "util/log.hpp"

namespace nixery {

JobResult BuildRunner::run(const JobSpec& job) {
    auto db = Db::open(m_s.config.database(), m_s.config.data.sql_dir);
    if (!db) {
        log::error("build job failed",
                   {{"image", job.image}, {"tag", job.tag}, {"error", db.error().message}});
        return server_fault(db.error(), job.image);
    }
    BuildCache cache(std::move(*db));
    const Nix nix(nix_settings(m_s.config));
    const auto source = make_source(m_s.config, nix);
    Builder builder(
        {m_s.config, m_s.popularity, *source, m_s.storage, cache, m_s.locks, nix, m_s.metrics});
    return builder.build_job(job);
}

} // namespace nixery
