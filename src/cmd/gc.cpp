#include "cmd/gc.hpp"

#include "cache/db.hpp"
#include "cmd/args.hpp"
#include "config.hpp"
#include "gc/collector.hpp"
#include "storage/backend.hpp"
#include "util/files.hpp"
#include "util/lock.hpp"
#include "util/log.hpp"
#include "util/text.hpp"

#include <cstdio>
#include <ctime>
#include <optional>

namespace nixery {

namespace {

constexpr Usage k_usage{"gc", "usage: nixery gc [--keep-days N] [--dry-run]\n"};

std::string plural(int n, const char* one, const char* many) {
    return std::to_string(n) + " " + (n == 1 ? one : many);
}

} // namespace

int gc_command(const std::vector<std::string>& args) {
    constexpr OptionSpec options_taken[] = {{"--keep-days", Takes::value, "a number of days"},
                                            {"--dry-run", Takes::nothing}};
    const auto given = parse_args(k_usage, options_taken, Positionals::none, args);
    if (!given) {
        return given.error();
    }
    GcOptions options;
    options.dry_run = given->has("--dry-run");
    std::optional<int> keep_days; // default: NIXERY_GC_KEEP_DAYS
    if (const auto v = given->value("--keep-days")) {
        const auto days = parse_decimal(*v, 99999);
        if (!days) {
            return usage_error(k_usage,
                               "--keep-days must be a whole number of days, not \"" + *v + "\"");
        }
        keep_days = static_cast<int>(*days);
    }

    const auto collect = [&]() -> Result<GcReport> {
        TRY_ASSIGN(const auto config, load_config(current_environment(), ConfigUse::serve));
        log::set_level(config.log_level);
        options.keep_days = keep_days.value_or(config.gc_keep_days);
        const auto say = [](std::string_view line) {
            std::fwrite(line.data(), 1, line.size(), stdout);
            std::fputc('\n', stdout);
            std::fflush(stdout);
        };
        const auto now = static_cast<std::int64_t>(std::time(nullptr));
        TRY_ASSIGN(auto storage, make_storage(config));
        if (options.dry_run) {
            // Reads only: no schema migration, no storage probe, no lock file.
            TRY_ASSIGN(auto db, Db::open_read_only(config.database(), config.data.sql_dir));
            return collect_garbage({config, *storage, db, nullptr}, options, now, say);
        }
        TRY(make_private_dir(config.locks()));
        TRY_ASSIGN(auto db, Db::open(config.database(), config.data.sql_dir));
        TRY(storage->check());
        TRY_ASSIGN(const auto locks, LockTable::open(config.lock_file()));
        return collect_garbage({config, *storage, db, &locks}, options, now, say);
    };
    const auto report = collect();
    if (!report) {
        log::error("gc failed", {{"error", report.error().message}});
        return 1;
    }
    const auto& r = *report;
    std::printf("gc%s: %s %s, %s of %s, %s of %s, %s, %s; %s kept%s\n",
                options.dry_run ? " (dry run, nothing deleted)" : "",
                options.dry_run ? "would delete" : "deleted",
                plural(r.images, "image", "images").c_str(),
                plural(r.blobs, "blob", "blobs").c_str(), describe_bytes(r.blob_bytes).c_str(),
                plural(r.staging_files, "staging file", "staging files").c_str(),
                describe_bytes(r.staging_bytes).c_str(),
                plural(r.records, "shared record", "shared records").c_str(),
                plural(r.gc_roots, "GC root", "GC roots").c_str(),
                plural(r.images_kept, "image", "images").c_str(),
                r.young_blobs == 0
                    ? ""
                    : (", and " + plural(r.young_blobs, "blob", "blobs") + " younger than an hour")
                          .c_str());
    log::info("gc finished", {{"dry_run", options.dry_run},
                              {"keep_days", options.keep_days},
                              {"images", r.images},
                              {"images_kept", r.images_kept},
                              {"blobs", r.blobs},
                              {"blob_bytes", static_cast<std::int64_t>(r.blob_bytes)},
                              {"young_blobs", r.young_blobs},
                              {"staging_files", r.staging_files},
                              {"staging_bytes", static_cast<std::int64_t>(r.staging_bytes)},
                              {"records", r.records},
                              {"stale_rows", r.stale_rows},
                              {"gc_roots", r.gc_roots},
                              {"work_dirs", r.work_dirs},
                              {"builds", r.builds},
                              {"interrupted_builds", r.interrupted_builds},
                              {"tags", r.tags},
                              {"store_paths", r.store_paths},
                              {"live_store_paths", r.live_store_paths}});
    if (r.store_paths > 0 || r.live_store_paths > 0) {
        std::printf("gc: %s %s from the Nix store%s\n",
                    options.dry_run ? "would delete" : "deleted",
                    plural(r.store_paths, "store path", "store paths").c_str(),
                    r.live_store_paths == 0
                        ? ""
                        : (", " + plural(r.live_store_paths, "store path", "store paths") +
                           " still alive (rooted) kept")
                              .c_str());
    }
    return 0;
}

} // namespace nixery
