#include "cmd/prebuild.hpp"

#include "builder/builder.hpp"
#include "cache/db.hpp"
#include "cmd/serve.hpp"
#include "config.hpp"
#include "core/reference.hpp"
#include "util/files.hpp"
#include "util/log.hpp"

#include <cstdio>

namespace nixery {

namespace {

constexpr const char* k_prebuild_usage = "usage: nixery prebuild IMAGE[:TAG]...\n";

struct Wanted {
    std::string name;
    std::string tag;
};

std::optional<Wanted> parse_wanted(const std::string& arg) {
    // A colon after the last slash separates the tag.
    const auto slash = arg.rfind('/');
    const auto colon = arg.find(':', slash == std::string::npos ? 0 : slash);
    Wanted w{arg.substr(0, colon), colon == std::string::npos ? "latest" : arg.substr(colon + 1)};
    if (!is_valid_repository_name(w.name) || !is_valid_tag(w.tag)) {
        return std::nullopt;
    }
    return w;
}

} // namespace

int prebuild_command(const std::vector<std::string>& args) {
    std::vector<Wanted> wanted;
    for (const auto& a : args) {
        auto w = parse_wanted(a);
        if (!w) {
            std::fprintf(stderr, "nixery prebuild: \"%s\" is not an image name[:tag]\n%s",
                         a.c_str(), k_prebuild_usage);
            return 2;
        }
        wanted.push_back(std::move(*w));
    }
    if (wanted.empty()) {
        std::fputs(k_prebuild_usage, stderr);
        return 2;
    }
    auto config = load_config(current_environment(), ConfigUse::serve);
    if (!config) {
        log::error("prebuild failed", {{"error", config.error().message}});
        return 1;
    }
    log::set_level(config->log_level);
    const auto open = [&]() -> Result<std::tuple<Db, std::unique_ptr<StorageBackend>, LockTable>> {
        TRY(make_dirs(config->state_dir));
        TRY(make_private_dir(config->locks()));
        TRY_ASSIGN(auto db, Db::open(config->database(), config->data.sql_dir));
        TRY_ASSIGN(auto storage, make_storage(*config));
        TRY(storage->check());
        TRY_ASSIGN(auto locks, LockTable::open(config->lock_file()));
        return std::make_tuple(std::move(db), std::move(storage), std::move(locks));
    };
    auto opened = open();
    if (!opened) {
        log::error("prebuild failed", {{"error", opened.error().message}});
        return 1;
    }
    auto& [db, storage, locks] = *opened;
    auto popularity = load_popularity(*config);
    if (!popularity) {
        log::error("prebuild failed", {{"error", popularity.error().message}});
        return 1;
    }
    auto metrics = Metrics::create_shared();
    if (!metrics) {
        log::error("prebuild failed", {{"error", metrics.error().message}});
        return 1;
    }
    BuildCache cache(std::move(db));
    const Nix nix(nix_settings(*config));
    const auto source = make_source(*config, nix);
    Builder builder({*config, *popularity, *source, *storage, cache, locks, nix, *metrics});

    int failed = 0;
    for (const auto& w : wanted) {
        const auto image = parse_image_name(w.name);
        const auto ready = [&]() -> Result<std::string, Failure> {
            TRY_ASSIGN(const auto resolved, builder.resolve(image, w.tag));
            TRY_ASSIGN(auto found, builder.find(resolved));
            if (!found) {
                builder.build_job({resolved.key, w.name, w.tag});
                TRY_ASSIGN(found, builder.find(resolved));
            }
            if (!found) {
                return unexpected(fault("the build left no image", {}));
            }
            return builder.serve(*found, w.name, w.tag, ManifestFormat::docker).digest;
        };
        const auto digest = ready();
        if (digest) {
            std::printf("ready %s:%s %s\n", w.name.c_str(), w.tag.c_str(), digest->c_str());
        } else {
            ++failed;
            // A build's failure was logged by the build; others are told here.
            if (!digest.error().remembered && !digest.error().internal.empty()) {
                log::error("prebuild failed", {{"image", w.name},
                                               {"tag", w.tag},
                                               {"error", digest.error().message},
                                               {"cause", digest.error().internal}});
            }
            std::printf("failed %s:%s: %s\n", w.name.c_str(), w.tag.c_str(),
                        digest.error().message.c_str());
        }
        std::fflush(stdout);
    }
    return failed == 0 ? 0 : 1;
}

} // namespace nixery
