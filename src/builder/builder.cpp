#include "builder/builder.hpp"

#include "builder/failure_memory.hpp"
#include "builder/lookup.hpp"
#include "builder/nix_errors.hpp"
#include "builder/records.hpp"
#include "builder/server_fault.hpp"
#include "builder/usage.hpp"
#include "core/cache_keys.hpp"
#include "core/layers.hpp"
#include "core/platform.hpp"
#include "util/log.hpp"
#include "util/timestamp.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <rapidjson/document.h>

namespace nixery {

namespace {

std::int64_t unix_now() {
    return static_cast<std::int64_t>(std::time(nullptr));
}

double precise_now() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Durations by the monotonic clock: a wall clock that steps mid-build would
// record a negative or an hour-long build in the history and the metrics.
double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int layer_count(const ImageRecord& image) {
    rapidjson::Document d;
    d.Parse<rapidjson::kParseIterativeFlag>(image.docker_manifest.c_str(),
                                            image.docker_manifest.size());
    if (d.HasParseError() || !d.IsObject() || !d.HasMember("layers") || !d["layers"].IsArray()) {
        return 0;
    }
    return static_cast<int>(d["layers"].Size());
}

std::string top_layer_description(const std::vector<std::string>& package_paths) {
    std::string out = "nixery: symlinks to";
    for (std::size_t i = 0; i < package_paths.size(); ++i) {
        out += (i == 0 ? " " : ", ") + std::string(store_path_name(package_paths[i]));
    }
    return out;
}

// Turns a routine failure of the server into the client's error.
template <typename T> Result<T, Failure> or_fault(Result<T> result, std::string_view what) {
    if (!result) {
        return unexpected(server_fault(result.error(), what));
    }
    return std::move(*result);
}

Result<void, Failure> or_fault(Result<void> result, std::string_view what) {
    if (!result) {
        return unexpected(server_fault(result.error(), what));
    }
    return {};
}

} // namespace

Builder::Builder(BuildServices services)
    : m_s(services), m_deadline(std::chrono::steady_clock::now() +
                                services.config.request_timeout() - std::chrono::minutes(1)),
      m_layering(layering_identity(services.config.layering, services.popularity)) {}

std::string Builder::key_of(const Image& image, std::string_view revision) const {
    return image_key(revision, image, m_layering, m_s.config.layer_compression);
}

// --- requests ------------------------------------------------------------------

Result<std::vector<Builder::Target>, Failure>
Builder::resolve(const Image& image, std::string_view tag, const ManifestChoice& choice) {
    TRY_ASSIGN(const auto source, m_s.source.resolve(tag));
    auto images = platform_images(image, m_s.config.platforms);
    if (images.size() > 1 && !choice.index) {
        // It is given the default platform's manifest: only that one is
        // built, waited for, and failed by.
        std::vector<Arch> archs;
        for (const auto& one : images) {
            archs.push_back(one.arch);
        }
        const auto wanted = default_platform(archs);
        std::erase_if(images, [&](const Image& one) { return one.arch != wanted; });
    }
    std::vector<Target> out;
    for (auto& one : images) {
        auto key = key_of(one, source.revision);
        out.push_back({std::move(one), {std::move(key), source.pinning}});
    }
    return out;
}

Result<Builder::Resolved, Failure> Builder::resolve_again(const Image& one, std::string_view tag) {
    TRY_ASSIGN(const auto source, m_s.source.resolve(tag));
    return Resolved{key_of(one, source.revision), source.pinning};
}

Result<std::optional<ImageRecord>, Failure> Builder::find(const Resolved& image) {
    TRY_ASSIGN(auto hit, use_evaluated(image.key, image.pinning));
    if (hit) {
        return hit;
    }
    TRY_ASSIGN(const auto failure,
               or_fault(remembered_failure(m_s.cache, image.key, unix_now()), image.key));
    // A transient failure (full disk, Nix daemon down) is remembered for
    // the build's waiters only: a new pull tries again.
    if (failure && !is_transient(failure->kind)) {
        return unexpected(*failure);
    }
    return std::optional<ImageRecord>();
}

Result<std::optional<ImageRecord>, Failure> Builder::built(const Resolved& image) {
    TRY_ASSIGN(const auto evaluation, or_fault(m_s.cache.find_evaluation(image.key), image.key));
    if (evaluation) {
        TRY_ASSIGN(auto found, or_fault(m_s.cache.find_image(evaluation->closure_key), image.key));
        if (found) {
            return found;
        }
    }
    TRY_ASSIGN(const auto failure,
               or_fault(remembered_failure(m_s.cache, image.key, unix_now()), image.key));
    if (failure) {
        return unexpected(*failure);
    }
    return std::optional<ImageRecord>();
}

Result<std::optional<ImageRecord>, Failure> Builder::built_at(const Target& target,
                                                              std::string_view tag) {
    TRY_ASSIGN(auto found, built(target.resolved));
    if (found) {
        return found;
    }
    TRY_ASSIGN(const auto now, resolve_again(target.image, tag));
    if (now.key == target.resolved.key) {
        return found;
    }
    return built(now);
}

Result<ServedManifest, Failure> Builder::serve(const std::vector<Found>& found,
                                               std::string_view name, std::string_view tag,
                                               const ManifestChoice& choice) {
    // Only a tag that selects something (a git ref) is worth listing: with
    // a local package set or a channel every tag is the same image, and
    // recording made-up ones would let anyone fill tags/list.
    if (m_s.config.source == SourceKind::git || tag == "latest") {
        (void)m_s.cache.record_tag(name, tag, unix_now());
    }
    if (found.size() > 1 && choice.index) {
        return serve_index(found, name, *choice.index);
    }
    // One platform: resolve() gave a client that reads no index only one.
    const auto& record = found.front().record;
    if (choice.format == ManifestFormat::oci) {
        return ServedManifest{record.oci_manifest, std::string(media_type::oci_manifest),
                              record.oci_digest};
    }
    return ServedManifest{record.docker_manifest, std::string(media_type::docker_manifest),
                          record.docker_digest};
}

// --- a build job -----------------------------------------------------------------

JobResult Builder::build_job(const JobSpec& job) {
    const log::RequestScope scope(job.request_id);
    const auto image = parse_image_name(job.image);
    auto key = job.key;
    const auto started_at = precise_now();
    const auto started = std::chrono::steady_clock::now();
    std::optional<std::int64_t> id;
    // The one log line of a job that failed, and its failure remembered.
    const auto failed = [&](const Failure& err) {
        const auto duration = id ? seconds_since(started) : 0.0;
        // The build history keeps the status the client got (start page).
        const auto status = registry_error(err).status;
        if (id) {
            (void)m_s.cache.finish_build(*id, duration, 0, 0, status, err.message);
        }
        remember_failure(m_s.cache, key, err, unix_now());
        log::Fields fields{{"image", job.image},
                           {"tag", job.tag},
                           {"status", status},
                           {"duration", duration},
                           {"error", err.message}};
        if (!err.what.empty()) {
            fields.emplace_back("failure", err.what);
        }
        if (!err.internal.empty()) {
            fields.emplace_back("cause", err.internal);
        }
        log::write(needs_operator(err.kind) ? log::Level::error : log::Level::warn, "build failed",
                   fields);
        auto told = err;
        told.internal.clear();
        return JobResult(std::move(told));
    };
    // The source is resolved again: a job runs in another thread than the
    // request that queued it. A revision that moved meanwhile (a pushed
    // branch) is built under its own key, never under the old revision's,
    // which would then name this content for good; the waiters find the
    // image under the new key (built_at).
    auto source = m_s.source.resolve(job.tag);
    if (!source) {
        return failed(source.error());
    }
    if (auto moved = key_of(image, source->revision); moved != key) {
        log::info("the source moved since the request; building its new revision",
                  {{"image", job.image}, {"tag", job.tag}});
        key = std::move(moved);
    }
    // One build per image across processes: the job board keeps a serving
    // pool to one, this lock also `nixery prebuild` running beside it.
    auto lock = m_s.locks.acquire(image_build_lock(key), time_left());
    if (!lock) {
        return failed(server_fault(lock.error(), job.image));
    }
    if (!*lock) {
        log::warn("another build of the image is still running", {{"image", job.image}});
        return JobOutcome::lost; // its waiters are told to retry
    }
    // Another instance sharing the storage, another process, or a job that
    // ended just before this one was queued, may have built it.
    auto hit = use_evaluated(key, source->pinning);
    if (!hit) {
        return failed(hit.error());
    }
    if (*hit) {
        return JobOutcome::succeeded;
    }
    auto prepared = m_s.source.prepare(*source);
    if (!prepared) {
        return failed(prepared.error());
    }
    if (job.tag == "latest") {
        record_current_source(m_s.config, prepared->provenance);
    }
    // A channel checked again after NIXERY_SOURCE_TTL that has not moved
    // is the same store path: its image is known without evaluating
    // nixpkgs again (seconds and hundreds of MB each time).
    const auto content_key =
        prepared->content.empty() ? std::string() : key_of(image, prepared->content);
    if (!content_key.empty()) {
        auto reused = reuse_evaluation(content_key, key);
        if (!reused) {
            return failed(reused.error());
        }
        if (*reused) {
            log::info("the source has not changed; its evaluation is reused",
                      {{"image", job.image}, {"tag", job.tag}});
            return JobOutcome::succeeded;
        }
    }
    auto started_build = m_s.cache.start_build(job.image, job.tag, key, started_at);
    if (!started_build) {
        return failed(server_fault(started_build.error(), job.image));
    }
    id = *started_build;
    auto built = build(image, *prepared, *id);
    const auto duration = seconds_since(started);
    m_s.metrics.count_build(built ? BuildOutcome::succeeded : BuildOutcome::failed, duration);
    if (!built) {
        return failed(built.error());
    }
    m_s.metrics.count_layers(built->layers_built, built->layers_reused, built->bytes_packed);
    (void)m_s.cache.finish_build(*id, duration, built->layers_built, built->layers_reused, 200, {});
    for (const auto& evaluated : {key, content_key}) {
        if (evaluated.empty()) {
            continue;
        }
        if (auto r = m_s.cache.record_evaluation(evaluated, built->closure_key, unix_now()); !r) {
            return failed(server_fault(r.error(), job.image));
        }
    }
    log::info("image built", {{"image", job.image},
                              {"tag", job.tag},
                              {"duration", duration},
                              {"layers_built", built->layers_built},
                              {"layers_reused", built->layers_reused}});
    return JobOutcome::succeeded;
}

Result<Builder::Outcome, Failure> Builder::build(const Image& image, const PreparedSource& prepared,
                                                 std::int64_t build_id) {
    const auto& nix_source = prepared.nix_source;
    const auto started = std::chrono::steady_clock::now(); // NIXERY_BUILD_TIMEOUT counts from here
    const auto request = request_json({nix_source, image.arch, image.packages});
    TRY_ASSIGN(const auto ev, evaluate(image, request));

    Outcome out;
    const bool bash = ev.has_attribute("bashInteractive");
    const auto out_paths = ev.out_paths();
    ImageProvenance provenance{canonical_image_name(image), {}, prepared.provenance};
    for (const auto* list : {&ev.packages, &ev.implicit}) {
        for (const auto& p : *list) {
            provenance.packages.emplace_back(p.name, p.out_path);
        }
    }
    const auto compression = m_s.config.layer_compression;
    out.closure_key = closure_key(out_paths, image.arch, bash, m_layering, k_default_layer_budget,
                                  provenance_digest(provenance), compression);
    {
        TRY_ASSIGN(const auto holding, hold_off_gc());
        TRY_ASSIGN(auto existing, use_image(out.closure_key));
        if (existing) {
            // Same outputs as an image already built: nothing to build or pack.
            out.layers_reused = layer_count(*existing);
            out.image = std::move(*existing);
            return out;
        }
    }

    TRY_ASSIGN(const auto roots,
               or_fault(GcRoots::create(m_s.config.state_dir, build_id), image.name));
    TRY_ASSIGN(const auto graph, realise(image, ev, request, roots, started));

    // From the first layer looked up to the image recorded: see k_gc_lock.
    TRY_ASSIGN(const auto holding, hold_off_gc());
    // Docker-format manifests reference gzip layers, OCI-format ones layers
    // compressed as configured (the same ones when that is gzip).
    Layers layers;
    std::vector<LayerCompression> forms{LayerCompression::gzip};
    if (compression != LayerCompression::gzip) {
        forms.push_back(compression);
    }
    const auto add_layer = [&](const std::vector<std::string>& paths,
                               LayerKind kind) -> Result<void, Failure> {
        TRY_ASSIGN(auto d, ensure_layer(paths, kind, forms, out));
        layers.gzip.push_back(std::move(d.front()));
        if (d.size() > 1) {
            layers.oci.push_back(std::move(d.back()));
        }
        return {};
    };
    for (auto& layer :
         group_layers(graph, m_s.popularity, k_default_layer_budget, m_s.config.layering)) {
        TRY(add_layer(layer.paths, LayerKind::store_paths));
        layers.paths.push_back(std::move(layer.paths));
    }
    TRY(add_layer(out_paths, LayerKind::top));
    layers.paths.emplace_back(); // symlinks only
    if (compression == LayerCompression::gzip) {
        layers.oci = layers.gzip;
    }
    TRY(record_image(image, bash, layers, provenance, graph, out));
    return out;
}

Result<Evaluation, Failure> Builder::evaluate(const Image& image, const std::string& request) {
    auto ev = m_s.nix.evaluate(request);
    if (!ev) {
        return unexpected(nix_error(ev.error(), image.name));
    }
    if (auto why = evaluation_error(*ev, image, m_s.config.describe_source())) {
        return unexpected(std::move(*why));
    }
    return std::move(*ev);
}

Result<ClosureGraph, Failure> Builder::realise(const Image& image, const Evaluation& ev,
                                               const std::string& request, const GcRoots& roots,
                                               std::chrono::steady_clock::time_point started) {
    auto built = m_s.nix.realise(ev, roots.dir(), started);
    if (!built && derivation_lost(built.error())) {
        // A garbage collection took derivations the evaluation wrote but
        // nothing rooted yet: evaluating again writes them again.
        log::warn("derivations were collected before they were built; evaluating again",
                  {{"image", image.name}});
        auto again = m_s.nix.evaluate(request);
        if (!again) {
            return unexpected(nix_error(again.error(), image.name));
        }
        built = m_s.nix.realise(*again, roots.dir(), started);
    }
    if (!built) {
        return unexpected(nix_error(built.error(), image.name));
    }
    auto graph = m_s.nix.closure(ev.out_paths());
    if (!graph) {
        return unexpected(nix_error(graph.error(), image.name));
    }
    return std::move(*graph);
}

Result<std::vector<LayerDescriptor>, Failure>
Builder::ensure_layer(const std::vector<std::string>& paths, LayerKind kind,
                      const std::vector<LayerCompression>& compressions, Outcome& outcome) {
    const bool top = kind == LayerKind::top;
    std::vector<LayerForm> forms;
    for (const auto c : compressions) {
        forms.push_back({top ? top_layer_key(paths, c) : layer_key(paths, c), c});
    }
    const auto what = [&](std::size_t i) { return "layer " + forms[i].key; };
    std::vector<std::optional<LayerRecord>> found(forms.size());
    const auto missing = [&] {
        std::vector<std::size_t> out;
        for (std::size_t i = 0; i < found.size(); ++i) {
            if (!found[i]) {
                out.push_back(i);
            }
        }
        return out;
    };
    for (std::size_t i = 0; i < forms.size(); ++i) {
        TRY_ASSIGN(found[i], or_fault(reusable_layer(forms[i].key), what(i)));
    }
    outcome.layers_reused += static_cast<int>(forms.size() - missing().size());

    if (!missing().empty()) {
        // Another build may be packing the same layer: wait as long as
        // nginx waits for us, then say so rather than let nginx time out.
        // Locks are taken in the order of `compressions`, the same in
        // every build, so two builds never wait for each other's.
        std::vector<NamedLock> locks;
        for (const auto i : missing()) {
            TRY_ASSIGN(auto lock,
                       or_fault(m_s.locks.acquire("layer:" + forms[i].key, time_left()), what(i)));
            if (!lock) {
                return unexpected(
                    busy("another build is still packing a layer of this image; retry later"));
            }
            TRY_ASSIGN(found[i], or_fault(reusable_layer(forms[i].key), what(i)));
            if (found[i]) {
                ++outcome.layers_reused; // packed meanwhile: its lock is not needed
            } else {
                locks.push_back(std::move(*lock));
            }
        }
        if (const auto todo = missing(); !todo.empty()) {
            std::vector<LayerForm> to_pack;
            for (const auto i : todo) {
                to_pack.push_back(forms[i]);
            }
            const auto started = std::chrono::steady_clock::now();
            TRY_ASSIGN(const auto packed, or_fault(pack_layer(m_s.storage, m_s.cache, to_pack,
                                                              paths, kind, unix_now()),
                                                   what(todo.front())));
            const auto duration = seconds_since(started);
            for (std::size_t k = 0; k < todo.size(); ++k) {
                log::info("layer packed", {{"digest", packed[k].digest},
                                           {"size", packed[k].size},
                                           {"compression", to_string(to_pack[k].compression)},
                                           {"paths", paths.size()},
                                           {"duration", duration}});
                ++outcome.layers_built;
                outcome.bytes_packed += packed[k].size;
                found[todo[k]] = packed[k];
            }
        }
    }

    const auto created_by = top ? top_layer_description(paths) : describe_layer(paths);
    std::vector<LayerDescriptor> out;
    for (std::size_t i = 0; i < forms.size(); ++i) {
        LayerDescriptor d;
        d.compression = forms[i].compression;
        d.created_by = created_by;
        d.digest = found[i]->digest;
        d.diff_id = found[i]->diff_id;
        d.size = found[i]->size;
        out.push_back(std::move(d));
    }
    return out;
}

Result<std::optional<LayerRecord>> Builder::reusable_layer(const std::string& key) {
    TRY_ASSIGN(auto found, find_layer(m_s.cache, m_s.storage, key));
    if (!found) {
        return std::optional<LayerRecord>();
    }
    const auto& record = found->record;
    // Rewritten before the blob is checked, so its time tells gc on an
    // instance sharing the storage that the layer is in use again, old as
    // it may be: gc there keeps a layer whose record is young, and looks
    // again right before deleting (gc/collector.hpp).
    TRY(m_s.storage.put(layer_record_key(key), encode_layer_record(record), "application/json"));
    TRY_ASSIGN(const bool stored, m_s.storage.exists(blob_key(record.digest.substr(7))));
    if (!stored) {
        return std::optional<LayerRecord>();
    }
    if (found->origin == Origin::shared) {
        TRY(m_s.cache.record_blob({record.digest, record.size, std::string(media_type::layer_blob)},
                                  unix_now()));
        TRY(m_s.cache.record_layer(key, record, unix_now()));
    }
    return std::optional<LayerRecord>(record);
}

Result<void, Failure> Builder::record_image(const Image& image, bool bash, const Layers& layers,
                                            const ImageProvenance& provenance,
                                            const ClosureGraph& graph, Outcome& out) {
    const auto store = [&](std::string_view data, std::string_view type) {
        return or_fault(store_document(m_s.storage, m_s.cache, data, type, unix_now()), image.name);
    };
    // One config for both formats, unless a gzip layer recorded by an older
    // packer has another diff_id than its zstd twin.
    const auto labels = config_labels(provenance, layers.paths);
    const auto config = config_json(ImageConfig{image.arch, layers.gzip, bash, labels});
    const auto oci_config = config_json(ImageConfig{image.arch, layers.oci, bash, labels});
    const auto annotations = manifest_annotations(provenance);
    TRY_ASSIGN(out.image.config_digest, store(config, media_type::docker_config));
    TRY_ASSIGN(const auto oci_config_digest, store(oci_config, media_type::docker_config));
    for (auto format : {ManifestFormat::docker, ManifestFormat::oci}) {
        const bool oci = format == ManifestFormat::oci;
        auto body = oci ? manifest_json(format, oci_config_digest, oci_config.size(), layers.oci,
                                        annotations)
                        : manifest_json(format, out.image.config_digest, config.size(), layers.gzip,
                                        annotations);
        TRY_ASSIGN(auto digest, store(body, manifest_media_type(format)));
        if (format == ManifestFormat::docker) {
            out.image.docker_manifest = std::move(body);
            out.image.docker_digest = std::move(digest);
        } else {
            out.image.oci_manifest = std::move(body);
            out.image.oci_digest = std::move(digest);
        }
    }
    for (const auto& d : layers.gzip) {
        out.image.blobs.push_back(d.digest);
    }
    // With zstd the OCI manifest references blobs of its own.
    if (m_s.config.layer_compression != LayerCompression::gzip) {
        for (const auto& d : layers.oci) {
            out.image.blobs.push_back(d.digest);
        }
    }
    out.image.blobs.push_back(out.image.config_digest);
    if (oci_config_digest != out.image.config_digest) {
        out.image.blobs.push_back(oci_config_digest);
    }
    out.image.blobs.push_back(out.image.docker_digest);
    out.image.blobs.push_back(out.image.oci_digest);

    // Its closure, built here: what `nixery gc` with NIXERY_NIX_GC may let
    // Nix delete once no image needs it.
    std::vector<std::string> store_paths;
    for (const auto& p : graph.paths) {
        store_paths.push_back(p.path);
    }
    TRY(or_fault(m_s.cache.record_image(out.closure_key, out.image, unix_now(), store_paths),
                 image.name));
    return or_fault(m_s.storage.put(image_record_key(out.closure_key),
                                    encode_image_record(out.image), "application/json"),
                    image.name);
}

// --- cache hits and uses ------------------------------------------------------------

Result<std::optional<ImageRecord>, Failure> Builder::use_evaluated(std::string_view image_key,
                                                                   Pinning pinning) {
    // The image found here must not be collected before its use is recorded.
    TRY_ASSIGN(const auto holding, hold_off_gc());
    TRY_ASSIGN(const auto evaluation, or_fault(m_s.cache.find_evaluation(image_key), image_key));
    if (!evaluation) {
        return std::optional<ImageRecord>();
    }
    const bool fresh = pinning == Pinning::pinned ||
                       within_ttl(std::chrono::seconds(unix_now() - evaluation->evaluated_at),
                                  m_s.config.source_ttl);
    if (!fresh) {
        return std::optional<ImageRecord>();
    }
    return use_image(evaluation->closure_key);
}

Result<bool, Failure> Builder::reuse_evaluation(std::string_view content_key,
                                                std::string_view image_key) {
    TRY_ASSIGN(const auto holding, hold_off_gc());
    TRY_ASSIGN(const auto evaluation, or_fault(m_s.cache.find_evaluation(content_key), image_key));
    if (!evaluation) {
        return false;
    }
    TRY_ASSIGN(const auto found, use_image(evaluation->closure_key));
    if (!found) {
        return false;
    }
    TRY(or_fault(m_s.cache.record_evaluation(image_key, evaluation->closure_key, unix_now()),
                 image_key));
    return true;
}

Result<std::optional<ImageRecord>, Failure> Builder::use_image(std::string_view closure_key) {
    TRY_ASSIGN(auto found, or_fault(find_image(m_s.cache, m_s.storage, closure_key), closure_key));
    if (!found) {
        return std::optional<ImageRecord>();
    }
    const auto now = unix_now();
    if (found->origin == Origin::shared) {
        // Built by another instance sharing the storage: known here from now.
        TRY(or_fault(m_s.cache.record_image(closure_key, found->record, now), closure_key));
    }
    if (record_image_use(m_s.cache, m_s.storage, closure_key, found->record, now) ==
        SharedImage::gone) {
        TRY(or_fault(m_s.cache.forget_image(closure_key), closure_key));
        return std::optional<ImageRecord>();
    }
    return std::optional<ImageRecord>(std::move(found->record));
}

Result<NamedLock, Failure> Builder::hold_off_gc() const {
    return nixery::hold_off_gc(m_s.locks, time_left());
}

std::chrono::milliseconds Builder::time_left() const {
    const auto left = m_deadline - std::chrono::steady_clock::now();
    return std::max(std::chrono::duration_cast<std::chrono::milliseconds>(left),
                    std::chrono::milliseconds(0));
}

} // namespace nixery
