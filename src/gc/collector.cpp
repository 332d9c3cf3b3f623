#include "gc/collector.hpp"

#include "builder/builder.hpp"
#include "builder/records.hpp"
#include "cache/gc_queries.hpp"
#include "util/log.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <map>
#include <set>
#include <sys/stat.h>

namespace nixery {

namespace fs = std::filesystem;

namespace {

// Blobs deleted per hold of the exclusive lock: builds wait for one batch.
constexpr std::size_t k_batch = 256;
// How long gc waits for builds to let go of k_gc_lock before it gives up.
constexpr auto k_lock_wait = std::chrono::minutes(30);

constexpr std::string_view k_blob_prefix = "layers/";
constexpr std::string_view k_image_records = "cache/images/";
constexpr std::string_view k_layer_records = "cache/layers/";
constexpr std::string_view k_record_suffix = ".json";

std::string utc_time(std::int64_t unix_seconds) {
    const auto t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    char buf[32] = "?";
    if (gmtime_r(&t, &tm) != nullptr) {
        std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
    }
    return buf;
}

bool is_hex64(std::string_view s) {
    return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

// "cache/images/<key>.json" → "<key>"; empty when `object` is not one.
std::string record_name(std::string_view object, std::string_view prefix) {
    if (object.size() <= prefix.size() + k_record_suffix.size() ||
        object.substr(0, prefix.size()) != prefix ||
        object.substr(object.size() - k_record_suffix.size()) != k_record_suffix) {
        return {};
    }
    return std::string(
        object.substr(prefix.size(), object.size() - prefix.size() - k_record_suffix.size()));
}

// What gc found before it takes the lock. Everything here is re-checked
// under the lock before anything is deleted.
struct Plan {
    std::vector<UnusedImage> unused;                               // a preview, for --dry-run
    std::map<std::string, std::uint64_t> candidates;               // digest → size
    std::set<std::string> stored;                                  // digests with an object
    std::set<std::string> image_records;                           // closure keys with a record
    std::map<std::string, std::vector<std::string>> layer_records; // digest → record keys
};

class Collector {
public:
    Collector(const GcServices& s, const GcOptions& o, std::int64_t now, const GcOutput& say)
        : m_s(s), m_options(o), m_now(now),
          m_cutoff(std::min(now - std::int64_t{o.keep_days} * 86400,
                            now - std::chrono::seconds(k_pull_grace).count())),
          m_q(s.db), m_say(say) {}

    Result<GcReport> run() {
        TRY_ASSIGN(auto plan, make_plan());
        if (m_options.dry_run) {
            TRY(preview(plan));
        } else {
            TRY(delete_unreferenced(plan));
            TRY_ASSIGN(const int evaluations, m_q.forget_dangling_evaluations());
            TRY_ASSIGN(const int failures, m_q.forget_expired_failures(m_now));
            log::debug("forgot rows", {{"evaluations", evaluations}, {"failures", failures}});
        }
        TRY(collect_staging_files());
        TRY(collect_gc_roots());
        TRY_ASSIGN(const auto images, m_q.image_keys());
        m_report.images_kept = static_cast<int>(images.size());
        if (m_options.dry_run) {
            m_report.images_kept -= m_report.images;
        }
        return m_report;
    }

private:
    std::string verb() const { return m_options.dry_run ? "would delete" : "delete"; }

    Result<Plan> make_plan() {
        Plan plan;
        TRY_ASSIGN(plan.unused, m_q.images_unused_since(m_cutoff));
        TRY_ASSIGN(const auto local, m_q.image_keys());
        std::set<std::string> unused;
        for (const auto& u : plan.unused) {
            unused.insert(u.closure_key);
        }
        TRY_ASSIGN(auto keep, m_q.referenced_since(m_cutoff));

        // Image records of images this instance does not know were built by
        // another instance sharing the storage: what they name stays.
        TRY_ASSIGN(const auto image_objects, m_s.storage.list(k_image_records));
        for (const auto& object : image_objects) {
            const auto key = record_name(object.key, k_image_records);
            if (key.empty()) {
                continue;
            }
            plan.image_records.insert(key);
            if (local.count(key) != 0) {
                continue;
            }
            TRY_ASSIGN(const auto body, m_s.storage.fetch(object.key));
            const auto record = body ? decode_image_record(*body) : std::nullopt;
            if (record) {
                keep.insert(record->blobs.begin(), record->blobs.end());
            }
        }

        TRY_ASSIGN(const auto blobs, m_s.storage.list(k_blob_prefix));
        for (const auto& object : blobs) {
            const auto hex = std::string_view(object.key).substr(k_blob_prefix.size());
            if (!is_hex64(hex)) {
                continue;
            }
            const auto digest = "sha256:" + std::string(hex);
            plan.stored.insert(digest);
            if (keep.count(digest) == 0) {
                plan.candidates[digest] = object.size;
            }
        }
        TRY_ASSIGN(const auto recorded, m_q.recorded_blobs());
        for (const auto& [digest, size] : recorded) {
            if (keep.count(digest) == 0 && plan.candidates.count(digest) == 0) {
                plan.candidates[digest] = plan.stored.count(digest) != 0 ? size : 0;
            }
        }

        TRY_ASSIGN(const auto layer_objects, m_s.storage.list(k_layer_records));
        for (const auto& object : layer_objects) {
            if (record_name(object.key, k_layer_records).empty()) {
                continue;
            }
            TRY_ASSIGN(const auto body, m_s.storage.fetch(object.key));
            const auto record = body ? decode_layer_record(*body) : std::nullopt;
            if (record && plan.candidates.count(record->digest) != 0) {
                plan.layer_records[record->digest].push_back(object.key);
            }
        }
        return plan;
    }

    Result<void> preview(const Plan& plan) {
        for (const auto& image : plan.unused) {
            TRY(say_image(image));
            m_report.images += 1;
            if (plan.image_records.count(image.closure_key) != 0) {
                m_say(verb() + " record " + image_record_key(image.closure_key));
                m_report.records += 1;
            }
        }
        for (const auto& [digest, size] : plan.candidates) {
            say_blob(plan, digest, size);
        }
        return {};
    }

    Result<void> say_image(const UnusedImage& image) {
        TRY_ASSIGN(const auto names, m_q.image_names(image.closure_key));
        std::string named;
        for (const auto& n : names) {
            named += (named.empty() ? "" : ", ") + n;
        }
        m_say(verb() + " image " + image.closure_key + (named.empty() ? "" : " (" + named + ")") +
              ", last used " + utc_time(image.last_used_at));
        return {};
    }

    void say_blob(const Plan& plan, const std::string& digest, std::uint64_t size) {
        if (plan.stored.count(digest) == 0) {
            m_report.stale_rows += 1; // only rows: the object is already gone
            return;
        }
        m_say(verb() + " blob " + digest + " (" + std::to_string(size) + " bytes)");
        m_report.blobs += 1;
        m_report.blob_bytes += size;
        const auto records = plan.layer_records.find(digest);
        if (records != plan.layer_records.end()) {
            for (const auto& key : records->second) {
                m_say(verb() + " record " + key);
                m_report.records += 1;
            }
        }
    }

    Result<NamedLock> lock_out_builds() {
        TRY_ASSIGN(auto now, m_s.locks.try_acquire(k_gc_lock));
        if (now) {
            return std::move(*now);
        }
        log::info("waiting for builds to record their images");
        TRY_ASSIGN(
            auto waited,
            m_s.locks.acquire(k_gc_lock,
                              std::chrono::duration_cast<std::chrono::milliseconds>(k_lock_wait)));
        if (!waited) {
            return fail("builds kept the cache busy for 30 minutes; run gc again later");
        }
        return std::move(*waited);
    }

    Result<void> delete_unreferenced(const Plan& plan) {
        std::vector<std::string> digests;
        for (const auto& [digest, size] : plan.candidates) {
            digests.push_back(digest);
        }
        std::size_t next = 0;
        bool images_done = false;
        while (!images_done || next < digests.size()) {
            TRY_ASSIGN(const auto holding, lock_out_builds());
            if (!images_done) {
                TRY(forget_unused_images(plan));
                images_done = true;
            }
            for (const auto end = std::min(digests.size(), next + k_batch); next < end; ++next) {
                const auto& digest = digests[next];
                TRY_ASSIGN(const bool referenced, m_q.is_referenced(digest));
                if (referenced) {
                    continue; // a build recorded an image with it since the plan
                }
                if (plan.stored.count(digest) != 0) {
                    TRY(m_s.storage.remove(blob_key(digest.substr(7))));
                }
                const auto records = plan.layer_records.find(digest);
                if (records != plan.layer_records.end()) {
                    for (const auto& key : records->second) {
                        TRY(m_s.storage.remove(key));
                    }
                }
                TRY(m_q.forget_blob(digest));
                say_blob(plan, digest, plan.candidates.at(digest));
            }
        }
        return {};
    }

    // Under the lock: the images unused since the cut-off as of now (a
    // request may have used one since the plan was made).
    Result<void> forget_unused_images(const Plan& plan) {
        TRY_ASSIGN(const auto unused, m_q.images_unused_since(m_cutoff));
        std::vector<std::string> keys;
        for (const auto& image : unused) {
            TRY(say_image(image));
            keys.push_back(image.closure_key);
        }
        TRY(m_q.forget_images(keys));
        m_report.images += static_cast<int>(keys.size());
        for (const auto& key : keys) {
            TRY(m_s.storage.remove(image_record_key(key)));
            if (plan.image_records.count(key) != 0) {
                m_say(verb() + " record " + image_record_key(key));
                m_report.records += 1;
            }
        }
        return {};
    }

    Result<void> collect_staging_files() {
        const auto& dir = m_s.storage.staging_dir();
        const auto too_old = m_now - std::chrono::seconds(k_staging_grace).count();
        std::error_code ec;
        for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
             it.increment(ec)) {
            const auto& path = it->path();
            struct stat st {};
            if (path.extension() != ".tmp" || ::lstat(path.c_str(), &st) != 0 ||
                !S_ISREG(st.st_mode) || st.st_mtime >= too_old) {
                continue;
            }
            if (!m_options.dry_run && ::unlink(path.c_str()) != 0 && errno != ENOENT) {
                return fail("unlink \"" + path.string() + "\" failed: " + errno_text(errno));
            }
            m_say(verb() + " staging file " + path.string() + " (" + std::to_string(st.st_size) +
                  " bytes)");
            m_report.staging_files += 1;
            m_report.staging_bytes += static_cast<std::uint64_t>(st.st_size);
        }
        if (ec && ec != std::errc::no_such_file_or_directory) {
            return fail("list \"" + dir.string() + "\" failed: " + ec.message());
        }
        return {};
    }

    // GC roots (state/gcroots/<build id>) of builds whose worker was killed:
    // they would keep the build's store paths from Nix's garbage collector.
    Result<void> collect_gc_roots() {
        const auto dir = m_s.config.state_dir / "gcroots";
        const auto too_old = m_now - std::chrono::seconds(k_staging_grace).count();
        std::error_code ec;
        for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
             it.increment(ec)) {
            const auto name = it->path().filename().string();
            struct stat st {};
            if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos ||
                name.size() > 18 || ::lstat(it->path().c_str(), &st) != 0 ||
                st.st_mtime >= too_old) {
                continue;
            }
            TRY_ASSIGN(const auto pid, m_q.running_build_pid(std::stoll(name)));
            if (pid && (::kill(static_cast<pid_t>(*pid), 0) == 0 || errno == EPERM)) {
                continue; // still building
            }
            if (!m_options.dry_run) {
                std::error_code rm;
                fs::remove_all(it->path(), rm);
                if (rm) {
                    return fail("remove \"" + it->path().string() + "\" failed: " + rm.message());
                }
            }
            m_say(verb() + " GC root " + it->path().string());
            m_report.gc_roots += 1;
        }
        if (ec && ec != std::errc::no_such_file_or_directory) {
            return fail("list \"" + dir.string() + "\" failed: " + ec.message());
        }
        return {};
    }

    const GcServices& m_s;
    const GcOptions& m_options;
    const std::int64_t m_now;
    const std::int64_t m_cutoff;
    GcQueries m_q;
    const GcOutput& m_say;
    GcReport m_report;
};

} // namespace

Result<GcReport> collect_garbage(const GcServices& services, const GcOptions& options,
                                 std::int64_t now, const GcOutput& say) {
    return Collector(services, options, now, say).run();
}

std::string describe_bytes(std::uint64_t bytes) {
    static constexpr const char* k_units[] = {"KiB", "MiB", "GiB", "TiB"};
    std::string out = std::to_string(bytes) + " bytes";
    if (bytes < 1024) {
        return out;
    }
    double value = static_cast<double>(bytes) / 1024;
    std::size_t unit = 0;
    while (value >= 1024 && unit + 1 < std::size(k_units)) {
        value /= 1024;
        ++unit;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, " (%.1f %s)", value, k_units[unit]);
    return out + buf;
}

} // namespace nixery
