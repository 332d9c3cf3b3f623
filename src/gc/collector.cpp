#include "gc/collector.hpp"

#include "builder/gc_lock.hpp"
#include "builder/records.hpp"
#include "builder/usage.hpp"
#include "cache/build_cache.hpp"
#include "cache/gc_queries.hpp"
#include "nix/nix.hpp"
#include "storage/layout.hpp"
#include "util/files.hpp"
#include "util/log.hpp"
#include "util/subprocess.hpp"
#include "util/text.hpp"
#include "util/timestamp.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <sys/stat.h>

namespace nixery {

namespace fs = std::filesystem;

namespace {

// Objects deleted per hold of the exclusive lock, and how long a hold may
// last at most: builds wait for one hold, not for the whole collection.
constexpr std::size_t k_batch = 256;
constexpr auto k_hold = std::chrono::seconds(1);
// How long gc waits for builds to let go of k_gc_lock before it gives up.
constexpr auto k_lock_wait = std::chrono::minutes(30);

std::int64_t seconds(std::chrono::seconds s) {
    return s.count();
}

// An image as gc sees it: this instance's row, its shared record, or both.
struct ImageState {
    bool local = false;
    std::int64_t local_use = 0;                  // last use here
    std::optional<std::int64_t> record_modified; // its shared record's time
    std::vector<std::string> manifests;          // the digests of its manifests
    std::vector<std::string> blobs;              // every digest it references
};

// manifest digest → modification time of its use marker.
using Markers = std::map<std::string, std::int64_t>;

std::int64_t last_use(const ImageState& image, const Markers& markers) {
    auto last = std::max(image.local_use, image.record_modified.value_or(0));
    for (const auto& digest : image.manifests) {
        const auto marker = markers.find(digest);
        if (marker != markers.end()) {
            last = std::max(last, marker->second + seconds(k_shared_use_interval));
        }
    }
    return last;
}

// What gc found before it takes the lock. The images' uses are checked again
// under the lock, and each blob's references before it is deleted.
struct Plan {
    std::map<std::string, ImageState> images; // closure key → state
    Markers markers;
    std::set<std::string> unused;                    // closure keys
    std::map<std::string, std::uint64_t> candidates; // digest → size
    std::set<std::string> stored;                    // digests with an object
    // digest → the shared records that go with the blob (a layer's, an index's)
    std::map<std::string, std::vector<std::string>> blob_records;
    // Markers and index records with nothing left to keep them for.
    std::vector<std::string> orphan_objects;
    std::map<std::string, std::string> image_lines; // closure key → what its deletion says
    // The shared index records: the index's digest, the object.
    std::vector<std::pair<std::string, StoredObject>> index_records;
    // Image records (of images this instance does not know) that cannot be
    // read: what those images reference is unknown.
    std::vector<std::string> unreadable_records;
};

class Collector {
public:
    Collector(const GcServices& s, const GcOptions& o, std::int64_t now, const GcOutput& say)
        : m_s(s), m_options(o), m_now(now),
          m_cutoff(std::min(now - std::int64_t{o.keep_days} * 86400, now - seconds(k_pull_grace))),
          m_young(now - seconds(k_object_grace)), m_q(s.db), m_say(say) {}

    Result<GcReport> run() {
        TRY_ASSIGN(auto plan, make_plan());
        if (m_options.dry_run) {
            TRY(preview(plan));
        } else {
            TRY(delete_unreferenced(plan));
            TRY(forget_rows());
        }
        if (!m_options.dry_run) {
            TRY_ASSIGN(const auto ended,
                       end_interrupted_builds(m_s.db, *m_s.locks, static_cast<double>(m_now)));
            for (const auto& b : ended) {
                m_say("end build " + std::to_string(b.id) + " of " + b.image + " as interrupted");
            }
            m_report.interrupted_builds = static_cast<int>(ended.size());
        }
        TRY(collect_staging_files());
        TRY(collect_git_exports());
        TRY(collect_gc_roots());
        if (m_s.config.nix_gc) {
            TRY(collect_store_paths());
        }
        return m_report;
    }

private:
    std::string verb() const { return m_options.dry_run ? "would delete" : "delete"; }

    Result<Plan> make_plan() {
        Plan plan;
        TRY_ASSIGN(const auto local, m_q.images());
        TRY_ASSIGN(auto references, m_q.image_blobs());
        for (const auto& image : local) {
            auto& state = plan.images[image.closure_key];
            state.local = true;
            state.local_use = image.last_used_at;
            state.manifests = {image.docker_digest, image.oci_digest};
            state.blobs = std::move(references[image.closure_key]);
        }
        // Images this instance does not know were built by another instance
        // sharing the storage: their records say what they reference.
        TRY_ASSIGN(const auto records, m_s.storage.list(k_image_records));
        for (const auto& object : records) {
            const auto key = record_name(object.key, k_image_records);
            if (key.empty()) {
                continue;
            }
            auto& state = plan.images[key];
            state.record_modified = object.modified;
            if (state.local) {
                continue;
            }
            TRY_ASSIGN(const auto body, m_s.storage.fetch(object.key));
            const auto record = body ? decode_image_record(*body) : std::nullopt;
            if (record) {
                state.manifests = {record->docker_digest, record->oci_digest};
                state.blobs = record->blobs;
            } else if (body) {
                plan.unreadable_records.push_back(object.key);
            }
        }
        // An index is kept with the images it lists, and its markers (a pull
        // by digest) are uses of each of them. This instance's indexes are
        // in its database; every instance's, in shared records.
        TRY_ASSIGN(auto indexes, m_q.indexes_by_manifest());
        TRY(read_index_records(plan, indexes));
        for (auto& [key, image] : plan.images) {
            std::vector<std::string> listing;
            for (const auto& manifest : image.manifests) {
                const auto it = indexes.find(manifest);
                if (it != indexes.end()) {
                    listing.insert(listing.end(), it->second.begin(), it->second.end());
                }
            }
            image.blobs.insert(image.blobs.end(), listing.begin(), listing.end());
            image.manifests.insert(image.manifests.end(), listing.begin(), listing.end());
        }
        TRY_ASSIGN(plan.markers, list_markers());

        std::set<std::string> keep;
        std::set<std::string> manifests;
        for (const auto& [key, image] : plan.images) {
            manifests.insert(image.manifests.begin(), image.manifests.end());
            if (last_use(image, plan.markers) < m_cutoff) {
                plan.unused.insert(key);
            } else {
                keep.insert(image.blobs.begin(), image.blobs.end());
            }
        }
        m_report.images_kept = static_cast<int>(plan.images.size() - plan.unused.size());
        for (const auto& [digest, modified] : plan.markers) {
            if (manifests.count(digest) == 0 && modified < m_young) {
                plan.orphan_objects.push_back(use_marker_key(digest));
            }
        }

        TRY_ASSIGN(const auto blobs, m_s.storage.list(k_blob_prefix));
        for (const auto& object : blobs) {
            const auto hex = std::string_view(object.key).substr(k_blob_prefix.size());
            if (!is_lower_hex(hex, 64)) {
                continue;
            }
            const auto digest = "sha256:" + std::string(hex);
            plan.stored.insert(digest);
            if (keep.count(digest) != 0) {
                continue;
            }
            if (object.modified >= m_young) {
                m_report.young_blobs += 1; // maybe another instance's build in flight
                continue;
            }
            plan.candidates[digest] = object.size;
        }
        TRY_ASSIGN(const auto recorded, m_q.recorded_blobs());
        for (const auto& [digest, size] : recorded) {
            if (keep.count(digest) == 0 && plan.stored.count(digest) == 0) {
                plan.candidates[digest] = 0; // only rows: the object is gone
            }
        }
        // A record whose index is gone (deleted by a gc before records
        // existed, or its deletion cut short) has nothing to keep.
        for (const auto& [digest, record] : plan.index_records) {
            if (plan.stored.count(digest) == 0 && plan.candidates.count(digest) == 0 &&
                record.modified < m_young) {
                plan.orphan_objects.push_back(record.key);
            }
        }

        // A record that cannot be read (damaged, or in a format this
        // version does not know) hides what its image references and which
        // markers are its uses, and an instance may be serving that image:
        // this run deletes no blob and no marker. That instance's daily
        // check reads the record and, finding it unreadable, builds the
        // image again, which writes it anew (builder/usage.cpp).
        if (!plan.unreadable_records.empty()) {
            for (const auto& key : plan.unreadable_records) {
                m_say("keep every blob and use marker: the shared record " + key +
                      " cannot be read, so what its image references is unknown");
            }
            std::erase_if(plan.orphan_objects, [](const std::string& object) {
                return object.starts_with(k_use_markers);
            });
            plan.candidates.clear();
        }
        if (plan.candidates.empty()) {
            return plan; // no layer record can name a blob to delete
        }
        TRY_ASSIGN(const auto layer_objects, m_s.storage.list(k_layer_records));
        for (const auto& object : layer_objects) {
            if (record_name(object.key, k_layer_records).empty()) {
                continue;
            }
            TRY_ASSIGN(const auto body, m_s.storage.fetch(object.key));
            const auto record = body ? decode_layer_record(*body) : std::nullopt;
            if (!record || plan.candidates.count(record->digest) == 0) {
                continue;
            }
            if (object.modified >= m_young) {
                plan.candidates.erase(record->digest); // just packed, by someone
                plan.blob_records.erase(record->digest);
                m_report.young_blobs += 1;
                continue;
            }
            plan.blob_records[record->digest].push_back(object.key);
        }
        return plan;
    }

    // Adds the indexes of the shared records to `indexes` (manifest →
    // indexes listing it); each record goes with its index's blob.
    Result<void> read_index_records(Plan& plan,
                                    std::map<std::string, std::vector<std::string>>& indexes) {
        TRY_ASSIGN(const auto objects, m_s.storage.list(k_index_records));
        for (const auto& object : objects) {
            const auto hex = record_name(object.key, k_index_records);
            if (!is_lower_hex(hex, 64)) {
                continue;
            }
            TRY_ASSIGN(const auto body, m_s.storage.fetch(object.key));
            const auto manifests = body ? decode_index_record(*body) : std::nullopt;
            if (!manifests) {
                continue;
            }
            const auto digest = "sha256:" + hex;
            for (const auto& manifest : *manifests) {
                auto& listing = indexes[manifest];
                if (std::find(listing.begin(), listing.end(), digest) == listing.end()) {
                    listing.push_back(digest);
                }
            }
            plan.blob_records[digest].push_back(object.key);
            plan.index_records.push_back({digest, object});
        }
        return {};
    }

    // manifest digest → marker time, from one listing.
    Result<Markers> list_markers() {
        Markers markers;
        TRY_ASSIGN(const auto objects, m_s.storage.list(k_use_markers));
        for (const auto& object : objects) {
            const auto hex = std::string_view(object.key).substr(k_use_markers.size());
            if (is_lower_hex(hex, 64)) {
                markers["sha256:" + std::string(hex)] = object.modified;
            }
        }
        return markers;
    }

    // The shared objects that describe an image: its record and markers.
    std::vector<std::string> image_objects(const Plan& plan, const std::string& key,
                                           const ImageState& image) const {
        std::vector<std::string> out;
        if (image.record_modified) {
            out.push_back(image_record_key(key));
        }
        for (const auto& digest : image.manifests) {
            if (plan.markers.count(digest) != 0) {
                out.push_back(use_marker_key(digest));
            }
        }
        return out;
    }

    Result<void> preview(const Plan& plan) {
        for (const auto& key : plan.unused) {
            const auto& image = plan.images.at(key);
            TRY_ASSIGN(const auto line, describe_image(key, image, plan.markers));
            m_say(line);
            m_report.images += 1;
            for (const auto& object : image_objects(plan, key, image)) {
                say_record(object);
            }
        }
        for (const auto& object : plan.orphan_objects) {
            say_record(object);
        }
        for (const auto& [digest, size] : plan.candidates) {
            say_blob(plan, digest, size);
        }
        return {};
    }

    Result<std::string> describe_image(const std::string& key, const ImageState& image,
                                       const Markers& markers) {
        std::string named;
        if (image.local) {
            TRY_ASSIGN(const auto names, m_q.image_names(key));
            for (const auto& n : names) {
                named += (named.empty() ? "" : ", ") + n;
            }
        } else {
            named = "known from its shared record";
        }
        return verb() + " image " + key + (named.empty() ? "" : " (" + named + ")") +
               ", last used " + format_utc(last_use(image, markers)) + " UTC";
    }

    void say_record(const std::string& object) {
        m_say(verb() + " record " + object);
        m_report.records += 1;
    }

    void say_blob(const Plan& plan, const std::string& digest, std::uint64_t size) {
        if (plan.stored.count(digest) == 0) {
            m_report.stale_rows += 1; // only rows: the object is already gone
            return;
        }
        m_say(verb() + " blob " + digest + " (" + std::to_string(size) + " bytes)");
        m_report.blobs += 1;
        m_report.blob_bytes += size;
        const auto records = plan.blob_records.find(digest);
        if (records != plan.blob_records.end()) {
            for (const auto& key : records->second) {
                say_record(key);
            }
        }
    }

    Result<NamedLock> lock_out_builds() {
        TRY_ASSIGN(auto now, m_s.locks->try_acquire(k_gc_lock));
        if (now) {
            return std::move(*now);
        }
        log::info("waiting for builds to record their images");
        TRY_ASSIGN(
            auto waited,
            m_s.locks->acquire(k_gc_lock,
                               std::chrono::duration_cast<std::chrono::milliseconds>(k_lock_wait)));
        if (!waited) {
            return fail("builds kept the cache busy for 30 minutes; run gc again later");
        }
        return std::move(*waited);
    }

    // One deletion: a shared object (record, marker), or a blob with its
    // rows and layer records.
    struct Deletion {
        enum class Kind { object, image, blob } kind;
        std::string name; // the object's key, the image's closure key, or the blob's digest
    };

    Result<void> delete_unreferenced(Plan& plan) {
        std::vector<Deletion> work;
        // Listed before the lock, which keeps out only this instance's
        // builds: the markers that matter are other instances'.
        TRY_ASSIGN(plan.markers, list_markers());
        {
            TRY_ASSIGN(const auto holding, lock_out_builds());
            TRY(forget_unused_images(plan, work));
        }
        for (const auto& object : plan.orphan_objects) {
            work.push_back({Deletion::Kind::object, object});
        }
        for (const auto& [digest, size] : plan.candidates) {
            work.push_back({Deletion::Kind::blob, digest});
        }
        for (std::size_t next = 0; next < work.size();) {
            TRY_ASSIGN(const auto holding, lock_out_builds());
            const auto until = std::chrono::steady_clock::now() + k_hold;
            for (std::size_t n = 0;
                 next < work.size() && n < k_batch && std::chrono::steady_clock::now() < until;
                 ++n, ++next) {
                TRY(perform(plan, work[next]));
            }
        }
        return {};
    }

    Result<void> perform(Plan& plan, const Deletion& d) {
        if (d.kind == Deletion::Kind::object) {
            TRY(m_s.storage.remove(d.name));
            say_record(d.name);
            return {};
        }
        if (d.kind == Deletion::Kind::image) {
            return forget_shared_image(plan, d.name);
        }
        const auto& digest = d.name;
        if (plan.candidates.count(digest) == 0) {
            return {}; // an image that references it was used since the plan
        }
        TRY_ASSIGN(const bool referenced, m_q.is_referenced(digest));
        if (referenced) {
            return {}; // a build recorded an image with it since the plan
        }
        TRY_ASSIGN(const bool reused, blob_reused_since_plan(plan, digest));
        if (reused) {
            m_report.young_blobs += 1; // a build on another instance reuses it
            return {};
        }
        if (plan.stored.count(digest) != 0) {
            TRY(m_s.storage.remove(blob_key(digest.substr(7))));
        }
        const auto records = plan.blob_records.find(digest);
        if (records != plan.blob_records.end()) {
            for (const auto& key : records->second) {
                TRY(m_s.storage.remove(key));
            }
        }
        TRY(m_q.forget_blob(digest));
        say_blob(plan, digest, plan.candidates.at(digest));
        return {};
    }

    // An unused image's shared record and markers, unless an instance
    // sharing the storage used it since the markers were listed (its
    // marker is newer): then it and its blobs are kept. The record goes
    // before the markers are looked at, and an instance writes its marker
    // before it checks that the record is stored (builder/usage.cpp): so
    // either that instance finds the record gone and builds the image
    // again, or gc sees its marker and puts the record back. Looking first
    // and deleting after would miss a use between the two.
    Result<void> forget_shared_image(Plan& plan, const std::string& key) {
        const auto& image = plan.images.at(key);
        const auto record_key = image_record_key(key);
        std::optional<std::string> record;
        if (image.record_modified) {
            TRY_ASSIGN(record, m_s.storage.fetch(record_key));
            TRY(m_s.storage.remove(record_key));
        }
        const auto used = [&]() -> Result<bool> {
            for (const auto& digest : image.manifests) {
                TRY_ASSIGN(const auto info, m_s.storage.stat(use_marker_key(digest)));
                const auto listed = plan.markers.find(digest);
                if (info && (listed == plan.markers.end() || info->modified > listed->second)) {
                    return true;
                }
            }
            return false;
        }();
        // Unsure (the store failed to answer) counts as used.
        if (!used || *used) {
            if (record) {
                TRY(m_s.storage.put(record_key, *record, "application/json"));
            }
            TRY(used);
            for (const auto& blob : image.blobs) {
                plan.candidates.erase(blob);
            }
            m_say("keep image " + key + ": used by an instance sharing the storage meanwhile" +
                  (image.local ? " (this instance's rows of it are forgotten: it reads the "
                                 "shared record when it next needs the image)"
                               : ""));
            m_report.images_kept += 1;
            m_report.images -= 1;
            return {};
        }
        m_say(plan.image_lines.at(key));
        for (const auto& object : image_objects(plan, key, image)) {
            if (object != record_key) {
                TRY(m_s.storage.remove(object));
            }
            say_record(object);
        }
        return {};
    }

    // Whether a builder (on any instance sharing the storage) rewrote a layer
    // record of `digest` since gc started: it is reusing the layer. Looked
    // at right before the deletion; the builder rewrites the record before
    // it checks that the blob exists (builder.cpp), so either it finds the
    // blob gone and packs it again, or gc finds the record young.
    Result<bool> blob_reused_since_plan(const Plan& plan, const std::string& digest) {
        const auto records = plan.blob_records.find(digest);
        if (records == plan.blob_records.end()) {
            return false;
        }
        for (const auto& key : records->second) {
            TRY_ASSIGN(const auto info, m_s.storage.stat(key));
            if (info && info->modified >= m_young) {
                return true;
            }
        }
        return false;
    }

    // Under the lock: the images still unused as of now (a request here may
    // have used one since the plan, another instance may have written a
    // marker, listed again right before), whose rows go at once and whose
    // shared objects are queued.
    // The blobs of an image used meanwhile are no longer candidates.
    Result<void> forget_unused_images(Plan& plan, std::vector<Deletion>& work) {
        TRY_ASSIGN(const auto still_unused_here, m_q.images_unused_since(m_cutoff));
        std::vector<std::string> rows;
        for (auto it = plan.unused.begin(); it != plan.unused.end();) {
            const auto& image = plan.images.at(*it);
            const bool used = (image.local && still_unused_here.count(*it) == 0) ||
                              last_use(image, plan.markers) >= m_cutoff;
            if (used) {
                for (const auto& digest : image.blobs) {
                    plan.candidates.erase(digest);
                }
                m_report.images_kept += 1;
                it = plan.unused.erase(it);
                continue;
            }
            // Said when it goes: another instance may use it until then.
            TRY_ASSIGN(plan.image_lines[*it], describe_image(*it, image, plan.markers));
            if (image.local) {
                rows.push_back(*it);
            }
            work.push_back({Deletion::Kind::image, *it});
            ++it;
        }
        TRY(forget_images(m_s.db, rows));
        m_report.images += static_cast<int>(plan.unused.size());
        return {};
    }

    // Rows nothing needs any more: evaluations of forgotten images, expired
    // failures, old history, and rate limits of markers.
    Result<void> forget_rows() {
        TRY_ASSIGN(const int evaluations, m_q.forget_dangling_evaluations());
        // (Only expired ones: one from before a step of the clock goes with
        // the next failure remembered; gc's clock was read when it started.)
        TRY_ASSIGN(const int failures, m_q.forget_expired_failures(m_now));
        TRY_ASSIGN(m_report.builds, m_q.forget_builds(m_cutoff, k_builds_kept));
        TRY_ASSIGN(m_report.tags, m_q.forget_tags(m_cutoff));
        TRY_ASSIGN(const int uses, m_q.forget_shared_uses(m_now - seconds(k_shared_use_interval)));
        log::debug("forgot rows",
                   {{"evaluations", evaluations}, {"failures", failures}, {"shared_uses", uses}});
        return {};
    }

    // Staging files killed processes left: of blobs, and of the small files
    // written atomically to the state directory (the channel's validator,
    // git's refs, current-source.json, …).
    Result<void> collect_staging_files() {
        const auto& state = m_s.config.state_dir;
        for (const auto& dir :
             {m_s.storage.staging_dir(), state, state / "git", state / "channels"}) {
            TRY(collect_staging_files_in(dir));
        }
        return {};
    }

    Result<void> collect_staging_files_in(const fs::path& dir) {
        TRY_ASSIGN(
            const auto stale,
            stale_staging_files(dir, "", m_now - std::chrono::seconds(k_staging_grace).count()));
        for (const auto& f : stale) {
            if (!m_options.dry_run && ::unlink(f.path.c_str()) != 0 && errno != ENOENT) {
                return fail("unlink \"" + f.path.string() + "\" failed: " + errno_text(errno));
            }
            m_say(verb() + " staging file " + f.path.string() + " (" + std::to_string(f.size) +
                  " bytes)");
            m_report.staging_files += 1;
            m_report.staging_bytes += f.size;
        }
        return {};
    }

    // Removes the entries of `dir` untouched for k_staging_grace that
    // `leftover` picks (by name and lstat), saying `what` each was.
    Result<int> remove_leftovers(
        const fs::path& dir, std::string_view what,
        const std::function<Result<bool>(const std::string&, const struct stat&)>& leftover) {
        const auto too_old = m_now - std::chrono::seconds(k_staging_grace).count();
        int removed = 0;
        std::error_code ec;
        for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
             it.increment(ec)) {
            struct stat st {};
            if (::lstat(it->path().c_str(), &st) != 0 || st.st_mtime >= too_old) {
                continue;
            }
            TRY_ASSIGN(const bool picked, leftover(it->path().filename().string(), st));
            if (!picked) {
                continue;
            }
            if (!m_options.dry_run) {
                std::error_code rm;
                fs::remove_all(it->path(), rm);
                if (rm) {
                    return fail("remove \"" + it->path().string() + "\" failed: " + rm.message());
                }
            }
            m_say(verb() + " " + std::string(what) + " " + it->path().string());
            ++removed;
        }
        if (ec && ec != std::errc::no_such_file_or_directory) {
            return fail("list \"" + dir.string() + "\" failed: " + ec.message());
        }
        return removed;
    }

    // The work directories of git exports (state/git/export-*) whose worker
    // was killed: each a commit's tar and tree, hundreds of MB for nixpkgs.
    // An export takes minutes at most, so one untouched for k_staging_grace
    // is nobody's.
    Result<void> collect_git_exports() {
        TRY_ASSIGN(m_report.work_dirs,
                   remove_leftovers(m_s.config.state_dir / "git", "git export work directory",
                                    [](const std::string& name, const struct stat& st) {
                                        return Result<bool>(name.starts_with("export-") &&
                                                            S_ISDIR(st.st_mode));
                                    }));
        return {};
    }

    // GC roots (state/gcroots/<build id>) of builds whose worker was killed:
    // they would keep the build's store paths from Nix's garbage collector.
    Result<void> collect_gc_roots() {
        TRY_ASSIGN(
            m_report.gc_roots,
            remove_leftovers(
                m_s.config.state_dir / "gcroots", "GC root",
                [this](const std::string& name, const struct stat&) -> Result<bool> {
                    const auto id = parse_decimal(name, std::numeric_limits<std::int64_t>::max());
                    if (!id) {
                        return false;
                    }
                    TRY_ASSIGN(const auto pid,
                               m_q.running_build_pid(static_cast<std::int64_t>(*id)));
                    // Still building?
                    return !pid || (::kill(static_cast<pid_t>(*pid), 0) != 0 && errno != EPERM);
                }));
        return {};
    }

    // Together (referrers and their references go in one collection), in
    // calls of k_paths_per_call paths, well within ARG_MAX; Nix refuses a
    // whole call when one of its paths is alive, so then that call's paths
    // one by one, and a live path does not keep the others. Again while a
    // round deletes something: a referrer in a later call kept its
    // references alive in an earlier one.
    static Result<void> delete_store_paths(std::vector<std::string> left) {
        const auto nix_delete = [](std::span<const std::string> paths) -> Result<bool> {
            ProcessSpec spec;
            spec.argv = {"nix-store", "--delete"};
            spec.argv.insert(spec.argv.end(), paths.begin(), paths.end());
            const auto run = run_process(spec);
            if (!run) {
                return fail("nix-store --delete failed: " + run.error().message);
            }
            return run->ok();
        };
        while (!left.empty()) {
            const auto before = left.size();
            for (std::size_t first = 0; first < left.size(); first += k_paths_per_call) {
                const auto batch = std::span<const std::string>(left).subspan(
                    first, std::min(k_paths_per_call, left.size() - first));
                TRY_ASSIGN(const bool deleted, nix_delete(batch));
                for (std::size_t i = 0; !deleted && i < batch.size(); ++i) {
                    if (fs::exists(batch[i])) {
                        TRY(nix_delete(batch.subspan(i, 1)));
                    }
                }
            }
            std::erase_if(left, [](const std::string& path) { return !fs::exists(path); });
            if (left.size() == before) {
                break; // alive: someone else's now
            }
        }
        return {};
    }

    // NIXERY_NIX_GC: the store paths no recorded image needs any more (noted
    // by a trigger when the last image that needed one was forgotten, see
    // sql/004_store_paths.sql) go from the Nix store. Exactly those paths,
    // with nix-store --delete, which refuses a path that is still alive (a
    // GC root of anyone, or a live path referring to it); never a full
    // collection, which would take everything unrooted on a shared store.
    Result<void> collect_store_paths() {
        TRY_ASSIGN(auto s, m_s.db.prepare("SELECT store_path FROM nix_gc_candidates WHERE "
                                          "store_path NOT IN (SELECT store_path FROM "
                                          "image_store_paths) ORDER BY store_path"));
        std::vector<std::string> candidates;
        for (;;) {
            TRY_ASSIGN(const bool row, s.step());
            if (!row) {
                break;
            }
            auto path = s.text(0);
            // Store paths only: never anything an argv could misread.
            if (path.size() > 1 && path[0] == '/' && path.find('\n') == std::string::npos &&
                fs::exists(path)) {
                candidates.push_back(std::move(path));
            }
        }
        const auto deleted = [&](const std::string& path) {
            m_say(verb() + " store path " + path);
            m_report.store_paths += 1;
        };
        if (!m_options.dry_run) {
            TRY(delete_store_paths(candidates));
        }
        for (const auto& path : candidates) {
            if (m_options.dry_run || !fs::exists(path)) {
                deleted(path);
            } else {
                m_report.live_store_paths += 1;
            }
        }
        if (!m_options.dry_run) {
            // Deleted or alive (someone else's now): no longer ours to collect.
            TRY_ASSIGN(auto done, m_s.db.prepare("DELETE FROM nix_gc_candidates WHERE store_path "
                                                 "NOT IN (SELECT store_path FROM "
                                                 "image_store_paths)"));
            TRY(done.run());
        }
        return {};
    }

    const GcServices& m_s;
    const GcOptions& m_options;
    const std::int64_t m_now;
    const std::int64_t m_cutoff;
    const std::int64_t m_young; // objects modified at or after this are kept
    GcQueries m_q;
    const GcOutput& m_say;
    GcReport m_report;
};

} // namespace

Result<GcReport> collect_garbage(const GcServices& services, const GcOptions& options,
                                 std::int64_t now, const GcOutput& say) {
    return Collector(services, options, now, say).run();
}

Result<std::vector<OpenBuild>> end_interrupted_builds(Db& db, const LockTable& locks, double now) {
    GcQueries q(db);
    TRY_ASSIGN(const auto open, q.open_builds());
    std::vector<OpenBuild> ended;
    for (const auto& b : open) {
        TRY_ASSIGN(const auto lock, locks.try_acquire(image_build_lock(b.image_key)));
        if (!lock) {
            continue; // still building (or another build of the image is)
        }
        TRY_ASSIGN(
            const bool was_open,
            q.end_interrupted_build(b.id, now, "interrupted: the process building it stopped"));
        if (was_open) {
            ended.push_back(b);
        }
    }
    return ended;
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
