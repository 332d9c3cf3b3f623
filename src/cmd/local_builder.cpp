#include "cmd/local_builder.hpp"

#include "cmd/serve.hpp"
#include "core/image.hpp"
#include "util/files.hpp"
#include "util/log.hpp"

namespace nixery {

Result<std::unique_ptr<LocalBuilder>> LocalBuilder::open() {
    TRY_ASSIGN(auto config, load_config(current_environment(), ConfigUse::serve));
    log::set_level(config.log_level);
    TRY(make_dirs(config.state_dir));
    TRY(make_private_dir(config.locks()));
    TRY_ASSIGN(auto storage, make_storage(config));
    TRY(storage->check());
    TRY_ASSIGN(auto locks, LockTable::open(config.lock_file()));
    TRY_ASSIGN(auto popularity, load_popularity(config));
    TRY_ASSIGN(auto metrics, Metrics::create_shared());
    std::unique_ptr<LocalBuilder> local(new LocalBuilder(std::move(config), std::move(storage),
                                                         std::move(locks), std::move(popularity),
                                                         std::move(metrics)));
    TRY_ASSIGN(local->m_parts,
               BuilderParts::open({local->m_config, local->m_popularity, *local->m_storage,
                                   local->m_locks, local->m_metrics}));
    return local;
}

LocalBuilder::LocalBuilder(Config config, std::unique_ptr<StorageBackend> storage, LockTable locks,
                           Popularity popularity, Metrics metrics)
    : m_config(std::move(config)), m_storage(std::move(storage)), m_locks(std::move(locks)),
      m_popularity(std::move(popularity)), m_metrics(std::move(metrics)) {}

Result<ServedManifest, Failure> LocalBuilder::image(std::string_view name, std::string_view tag,
                                                    const ManifestChoice& choice) {
    auto builder = m_parts->builder();
    // As the pool answers a manifest by tag (registry/registry.cpp): the
    // cache, else a build job per platform and then what they recorded.
    // One platform after the other: this process has no job board.
    TRY_ASSIGN(const auto targets, builder.resolve(parse_image_name(name), tag, choice));
    const bool several = targets.size() > 1;
    std::vector<Builder::Found> found;
    for (const auto& target : targets) {
        const auto named = [&](Failure f) {
            return several ? platform_failure(std::move(f), target.image.arch) : f;
        };
        const auto& job_name = target.image.name;
        auto one = builder.find(target.resolved);
        if (!one) {
            return unexpected(named(one.error()));
        }
        if (!*one) {
            const auto result =
                builder.build_job({target.resolved.key, job_name, std::string(tag)});
            if (result.outcome == JobOutcome::lost) {
                return unexpected(named(
                    busy("another build of \"" + job_name + "\" is still running; retry later")));
            }
            one = builder.built_at(target, tag);
            if (!one) {
                return unexpected(named(one.error()));
            }
            if (!*one && result.failure) {
                // The build's failure, which the cache could not remember.
                return unexpected(named(*result.failure));
            }
        }
        if (!*one) {
            return unexpected(named(fault("the build of \"" + job_name + "\" left no image", {})));
        }
        found.push_back({target.image.arch, std::move(**one)});
    }
    return builder.serve(found, name, tag, choice);
}

} // namespace nixery
