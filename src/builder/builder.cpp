#include "builder/builder.hpp"

#include "builder/records.hpp"
#include "builder/usage.hpp"
#include "core/cache_keys.hpp"
#include "core/closure_graph.hpp"
#include "core/layers.hpp"
#include "pack/layer_writer.hpp"
#include "pack/store_paths.hpp"
#include "pack/top_layer.hpp"
#include "util/log.hpp"
#include "util/sha256.hpp"
#include "util/text.hpp"

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

// A fault of this server (disk, database, storage): logged with its full
// text, reported with its cause alone ("No space left on device"), never with
// the paths, bucket or SQL of the message.
RegistryError server_fault(const Error& e, std::string_view image) {
    log::error("build failed", {{"image", image}, {"error", e.message}});
    const auto cause = public_cause(e.message);
    return internal_error("building \"" + std::string(image) + "\" failed on the server" +
                          (cause.empty() ? std::string() : ": " + cause));
}

std::string quoted_list(const std::vector<std::string>& names) {
    std::string out;
    for (std::size_t i = 0; i < names.size(); ++i) {
        out += (i == 0 ? "" : i + 1 == names.size() ? " and " : ", ") + json_string(names[i]);
    }
    return out;
}

std::string json_list(const std::vector<std::string>& names) {
    std::string out = "[";
    for (std::size_t i = 0; i < names.size(); ++i) {
        out += (i == 0 ? "" : ",") + json_string(names[i]);
    }
    return out + "]";
}

RegistryError nix_error(const NixFailure& f, std::string_view image, std::chrono::seconds timeout) {
    const std::string name(image);
    switch (f.kind) {
    case NixFailure::Kind::timed_out:
        return manifest_unknown("building \"" + name + "\" timed out: Nix (" + f.operation +
                                    ") ran longer than NIX_TIMEOUT (" +
                                    std::to_string(timeout.count()) + " s)" +
                                    (f.log_tail.empty() ? "" : "; last output:\n" + f.log_tail),
                                R"({"timeout":)" + std::to_string(timeout.count()) + R"(,"log":)" +
                                    json_string(f.log_tail) + "}");
    case NixFailure::Kind::failed:
        return manifest_unknown("building \"" + name + "\" failed: Nix (" + f.operation +
                                    ") said:\n" + f.log_tail,
                                R"({"log":)" + json_string(f.log_tail) + "}");
    case NixFailure::Kind::not_runnable:
        log::error("cannot run nix", {{"operation", f.operation}, {"error", f.log_tail}});
        if (f.log_tail.find("daemon") != std::string::npos ||
            f.log_tail.find("cannot connect to socket") != std::string::npos) {
            return RegistryError{503,
                                 "UNAVAILABLE",
                                 "cannot run Nix on the server: the Nix daemon is not running "
                                 "(its socket is missing); retry later",
                                 {}};
        }
        return internal_error("cannot run Nix on the server");
    }
    return internal_error("unknown Nix failure");
}

int layer_count(const ImageRecord& image) {
    return static_cast<int>(manifest_layer_count(image.docker_manifest));
}

std::string top_layer_description(const std::vector<std::string>& package_paths) {
    std::string out = "nixery: symlinks to";
    for (std::size_t i = 0; i < package_paths.size(); ++i) {
        out += (i == 0 ? " " : ", ") + std::string(store_path_name(package_paths[i]));
    }
    return out;
}

} // namespace

Result<ServedManifest, RegistryError> Builder::manifest(const Image& image, std::string_view tag,
                                                        ManifestFormat format) {
    m_deadline =
        std::chrono::steady_clock::now() + m_s.config.request_timeout() - std::chrono::minutes(1);
    TRY_ASSIGN(const auto source, m_s.source.resolve(tag));
    const auto key = image_key(source.revision, image);
    TRY_ASSIGN(auto hit, cached(key, source.pinning, unix_now()));

    if (!hit) {
        const auto remembered = m_s.cache.find_failure(key, unix_now());
        if (!remembered) {
            return unexpected(server_fault(remembered.error(), image.name));
        }
        if (*remembered) {
            return unexpected(**remembered);
        }
        // Another thread or process may be building the same image; wait
        // for it as long as nginx waits for us.
        auto lock = m_s.locks.acquire("image:" + key, time_left());
        if (!lock) {
            return unexpected(server_fault(lock.error(), image.name));
        }
        if (!*lock) {
            return unexpected(RegistryError{503,
                                            "UNAVAILABLE",
                                            "another build of \"" + image.name +
                                                "\" is still running; retry later",
                                            {}});
        }
        // Whoever held the lock may have finished this image, or failed it.
        TRY_ASSIGN(hit, cached(key, source.pinning, unix_now()));
        if (!hit) {
            const auto again = m_s.cache.find_failure(key, unix_now());
            if (again && *again) {
                return unexpected(**again);
            }
            TRY_ASSIGN(const auto prepared, m_s.source.prepare(source));
            if (tag == "latest") {
                record_current_source(m_s.config, prepared.provenance);
            }
            const auto started = precise_now();
            auto id = m_s.cache.start_build(image.name, tag, key, started);
            if (!id) {
                return unexpected(server_fault(id.error(), image.name));
            }
            auto built = build(image, prepared, *id);
            const auto duration = precise_now() - started;
            m_s.metrics.count_build(built ? BuildOutcome::succeeded : BuildOutcome::failed,
                                    duration);
            if (built) {
                m_s.metrics.count_layers(built->layers_built, built->layers_reused,
                                         built->bytes_packed);
            }
            if (!built) {
                const auto& err = built.error();
                (void)m_s.cache.finish_build(*id, duration, 0, 0, err.status, err.message);
                // A fault of the server (full disk, Nix daemon down) is not
                // the image's: the next pull tries again.
                if (err.status < 500) {
                    (void)m_s.cache.remember_failure(key, err,
                                                     unix_now() + k_failure_memory.count());
                }
                log::warn("build failed", {{"image", image.name},
                                           {"tag", tag},
                                           {"status", err.status},
                                           {"duration", duration},
                                           {"error", err.message}});
                return unexpected(built.error());
            }
            (void)m_s.cache.finish_build(*id, duration, built->layers_built, built->layers_reused,
                                         200, {});
            auto recorded = m_s.cache.record_evaluation(key, built->closure_key, unix_now());
            if (!recorded) {
                return unexpected(server_fault(recorded.error(), image.name));
            }
            log::info("image built", {{"image", image.name},
                                      {"tag", tag},
                                      {"duration", duration},
                                      {"layers_built", built->layers_built},
                                      {"layers_reused", built->layers_reused}});
            hit = std::move(built->image);
        }
    }

    // Only a tag that selects something (a git ref) is worth listing: with
    // a local package set or a channel every tag is the same image, and
    // recording made-up ones would let anyone fill tags/list.
    if (m_s.config.source == SourceKind::git || tag == "latest") {
        (void)m_s.cache.record_tag(image.name, tag, unix_now());
    }
    const auto& record = *hit;
    if (format == ManifestFormat::oci) {
        return ServedManifest{record.oci_manifest, std::string(media_type::oci_manifest),
                              record.oci_digest};
    }
    return ServedManifest{record.docker_manifest, std::string(media_type::docker_manifest),
                          record.docker_digest};
}

std::chrono::milliseconds Builder::time_left() const {
    const auto left = m_deadline - std::chrono::steady_clock::now();
    return std::max(std::chrono::duration_cast<std::chrono::milliseconds>(left),
                    std::chrono::milliseconds(0));
}

Result<NamedLock, RegistryError> Builder::hold_off_gc(std::string_view image) {
    // gc holds the lock for a second or so at a time; waiting longer than
    // this means something is wrong with it.
    const auto wait = std::min(time_left(), std::chrono::milliseconds(std::chrono::minutes(5)));
    auto lock = m_s.locks.acquire(k_gc_lock, wait, LockMode::shared);
    if (!lock) {
        return unexpected(server_fault(lock.error(), image));
    }
    if (!*lock) {
        log::error("garbage collection held the cache too long", {{"image", image}});
        return unexpected(RegistryError{
            503, "UNAVAILABLE", "the registry is collecting garbage; retry shortly", {}});
    }
    return std::move(**lock);
}

Result<std::optional<ImageRecord>, RegistryError>
Builder::cached(std::string_view image_key, Pinning pinning, std::int64_t now) {
    // The image found here must not be collected before its use is recorded.
    TRY_ASSIGN(const auto holding, hold_off_gc(image_key));
    auto evaluation = m_s.cache.find_evaluation(image_key);
    if (!evaluation) {
        return unexpected(server_fault(evaluation.error(), image_key));
    }
    if (!*evaluation) {
        return std::optional<ImageRecord>();
    }
    const bool fresh = pinning == Pinning::pinned ||
                       now - (*evaluation)->evaluated_at < m_s.config.source_ttl.count();
    if (!fresh) {
        return std::optional<ImageRecord>();
    }
    return use_image((*evaluation)->closure_key, now);
}

Result<std::optional<ImageRecord>, RegistryError> Builder::use_image(std::string_view closure_key,
                                                                     std::int64_t now) {
    TRY_ASSIGN(auto image, find_image(closure_key));
    if (image &&
        record_image_use(m_s.cache, m_s.storage, closure_key, *image, now) == SharedImage::gone) {
        if (auto forgot = m_s.cache.forget_image(closure_key); !forgot) {
            return unexpected(server_fault(forgot.error(), closure_key));
        }
        return std::optional<ImageRecord>();
    }
    return image;
}

Result<std::optional<ImageRecord>, RegistryError>
Builder::find_image(std::string_view closure_key) {
    auto local = m_s.cache.find_image(closure_key);
    if (!local) {
        return unexpected(server_fault(local.error(), closure_key));
    }
    if (*local) {
        return std::move(*local);
    }
    // Another instance sharing the storage may have built it.
    auto shared = m_s.storage.fetch(image_record_key(closure_key));
    if (!shared) {
        log::warn("reading shared image record failed", {{"error", shared.error().message}});
        return std::optional<ImageRecord>();
    }
    if (!*shared) {
        return std::optional<ImageRecord>();
    }
    auto record = decode_image_record(**shared);
    if (!record) {
        log::warn("ignoring malformed shared image record", {{"closure_key", closure_key}});
        return std::optional<ImageRecord>();
    }
    auto stored = m_s.cache.record_image(closure_key, *record, unix_now());
    if (!stored) {
        return unexpected(server_fault(stored.error(), closure_key));
    }
    return std::optional<ImageRecord>(std::move(*record));
}

Result<Builder::Outcome, RegistryError>
Builder::build(const Image& image, const PreparedSource& prepared, std::int64_t build_id) {
    const auto& nix_source = prepared.nix_source;
    const auto timeout = m_s.config.nix_timeout;
    const auto request = request_json({nix_source, image.arch, image.packages});
    auto ev = m_s.nix.evaluate(request);
    if (!ev) {
        return unexpected(nix_error(ev.error(), image.name, timeout));
    }
    if (!ev->missing.empty()) {
        const bool one = ev->missing.size() == 1;
        return unexpected(manifest_unknown(
            std::string(one ? "package " : "packages ") + quoted_list(ev->missing) +
                (one ? " is" : " are") + " not in the package set (" +
                m_s.config.describe_source() +
                "); check the spelling of each path component of \"" + image.name + "\"",
            R"({"missing":)" + json_list(ev->missing) + "}"));
    }
    if (!ev->not_packages.empty()) {
        return unexpected(manifest_unknown(
            quoted_list(ev->not_packages) + " in \"" + image.name +
                "\" is an attribute of the package set but not a package (a derivation)",
            R"({"notPackages":)" + json_list(ev->not_packages) + "}"));
    }
    if (!ev->refused.empty()) {
        const auto& name = ev->refused.front();
        const auto why = m_s.nix.explain(request_json({nix_source, image.arch, {name}}));
        return unexpected(manifest_unknown(
            "package " + quoted_list(ev->refused) +
                " cannot be used: Nix refuses to evaluate it:\n" + why,
            R"({"refused":)" + json_list(ev->refused) + R"(,"log":)" + json_string(why) + "}"));
    }
    if (image.arch == Arch::arm64 && !ev->system_applied) {
        return unexpected(manifest_unknown(
            "the package set takes no \"system\" argument, so it cannot build arm64 images"));
    }

    Outcome out;
    const bool bash = ev->has_attribute("bashInteractive");
    const auto out_paths = ev->out_paths();
    ImageProvenance provenance{canonical_image_name(image), {}, prepared.provenance};
    for (const auto* list : {&ev->packages, &ev->implicit}) {
        for (const auto& p : *list) {
            provenance.packages.emplace_back(p.name, p.out_path);
        }
    }
    const auto compression = m_s.config.layer_compression;
    out.closure_key =
        closure_key(out_paths, image.arch, bash, m_s.popularity.digest(), k_default_layer_budget,
                    provenance_digest(provenance), compression);
    {
        TRY_ASSIGN(const auto holding, hold_off_gc(image.name));
        TRY_ASSIGN(auto existing, use_image(out.closure_key, unix_now()));
        if (existing) {
            // Same outputs as an image already built: nothing to build or pack.
            out.layers_reused = layer_count(*existing);
            out.image = std::move(*existing);
            return out;
        }
    }

    const auto gcroot = m_s.config.state_dir / "gcroots" / std::to_string(build_id);
    if (auto made = make_dirs(gcroot); !made) {
        return unexpected(server_fault(made.error(), image.name));
    }
    struct RemoveRoots {
        std::filesystem::path dir;
        ~RemoveRoots() {
            std::error_code ec;
            std::filesystem::remove_all(dir, ec);
        }
    } remove_roots{gcroot};

    if (auto built = m_s.nix.realise(request, gcroot / "result"); !built) {
        return unexpected(nix_error(built.error(), image.name, timeout));
    }
    auto graph = m_s.nix.closure(out_paths);
    if (!graph) {
        return unexpected(nix_error(graph.error(), image.name, timeout));
    }

    // From the first layer looked up to the image recorded: see k_gc_lock.
    TRY_ASSIGN(const auto holding, hold_off_gc(image.name));
    // Docker-format manifests reference gzip layers, OCI-format ones layers
    // compressed as configured (the same ones when that is gzip).
    std::vector<LayerDescriptor> descriptors; // gzip
    std::vector<LayerDescriptor> oci_descriptors;
    std::vector<std::vector<std::string>> layer_paths;
    const auto add_layer = [&](const std::vector<std::string>& paths,
                               bool top) -> Result<void, RegistryError> {
        TRY_ASSIGN(auto d, ensure_layer(paths, top, LayerCompression::gzip, out));
        descriptors.push_back(std::move(d));
        if (compression != LayerCompression::gzip) {
            TRY_ASSIGN(auto o, ensure_layer(paths, top, compression, out));
            oci_descriptors.push_back(std::move(o));
        }
        return {};
    };
    for (auto& layer : group_layers(*graph, m_s.popularity, k_default_layer_budget)) {
        TRY(add_layer(layer.paths, false));
        layer_paths.push_back(std::move(layer.paths));
    }
    TRY(add_layer(out_paths, true));
    layer_paths.emplace_back(); // symlinks only
    if (compression == LayerCompression::gzip) {
        oci_descriptors = descriptors;
    }

    // One config for both formats, unless a gzip layer recorded by an older
    // packer has another diff_id than its zstd twin.
    const auto labels = config_labels(provenance, layer_paths);
    const auto config = config_json(ImageConfig{image.arch, descriptors, bash, labels});
    const auto annotations = manifest_annotations(provenance);
    TRY_ASSIGN(out.image.config_digest, store_document(config, media_type::docker_config));
    const auto oci_config = config_json(ImageConfig{image.arch, oci_descriptors, bash, labels});
    TRY_ASSIGN(const auto oci_config_digest, store_document(oci_config, media_type::docker_config));
    for (auto format : {ManifestFormat::docker, ManifestFormat::oci}) {
        const bool oci = format == ManifestFormat::oci;
        auto body = oci ? manifest_json(format, oci_config_digest, oci_config.size(),
                                        oci_descriptors, annotations)
                        : manifest_json(format, out.image.config_digest, config.size(), descriptors,
                                        annotations);
        TRY_ASSIGN(auto digest, store_document(body, manifest_media_type(format)));
        if (format == ManifestFormat::docker) {
            out.image.docker_manifest = std::move(body);
            out.image.docker_digest = std::move(digest);
        } else {
            out.image.oci_manifest = std::move(body);
            out.image.oci_digest = std::move(digest);
        }
    }
    for (const auto& d : descriptors) {
        out.image.blobs.push_back(d.digest);
    }
    if (compression != LayerCompression::gzip) {
        for (const auto& d : oci_descriptors) {
            out.image.blobs.push_back(d.digest);
        }
    }
    out.image.blobs.push_back(out.image.config_digest);
    if (oci_config_digest != out.image.config_digest) {
        out.image.blobs.push_back(oci_config_digest);
    }
    out.image.blobs.push_back(out.image.docker_digest);
    out.image.blobs.push_back(out.image.oci_digest);

    std::vector<std::string> store_paths;
    for (const auto& p : graph->paths) {
        store_paths.push_back(p.path);
    }
    if (auto r = m_s.cache.record_image(out.closure_key, out.image, unix_now(), store_paths); !r) {
        return unexpected(server_fault(r.error(), image.name));
    }
    if (auto r = m_s.storage.put(image_record_key(out.closure_key), encode_image_record(out.image),
                                 "application/json");
        !r) {
        return unexpected(server_fault(r.error(), image.name));
    }
    return out;
}

Result<LayerDescriptor, RegistryError> Builder::ensure_layer(const std::vector<std::string>& paths,
                                                             bool top, LayerCompression compression,
                                                             Outcome& outcome) {
    const auto key = top ? top_layer_key(paths, compression) : layer_key(paths, compression);
    LayerDescriptor descriptor;
    descriptor.compression = compression;
    descriptor.created_by = top ? top_layer_description(paths) : describe_layer(paths);

    // Known here, or to another instance sharing the storage, and still stored?
    const auto lookup = [&]() -> Result<std::optional<LayerRecord>> {
        TRY_ASSIGN(auto local, m_s.cache.find_layer(key));
        std::optional<LayerRecord> record = std::move(local);
        bool shared = false;
        if (!record) {
            TRY_ASSIGN(auto blob, m_s.storage.fetch(layer_record_key(key)));
            if (blob) {
                record = decode_layer_record(*blob);
                shared = record.has_value();
            }
        }
        if (!record) {
            return std::optional<LayerRecord>();
        }
        // Rewritten before the blob is checked, so its time tells gc on an
        // instance sharing the storage that the layer is in use again, old
        // as it may be: gc there keeps a layer whose record is young, and
        // looks again right before deleting (gc/collector.hpp).
        TRY(m_s.storage.put(layer_record_key(key), encode_layer_record(*record),
                            "application/json"));
        TRY_ASSIGN(const bool stored, m_s.storage.exists(blob_key(record->digest.substr(7))));
        if (!stored) {
            return std::optional<LayerRecord>();
        }
        if (shared) {
            TRY(m_s.cache.record_blob(
                {record->digest, record->size, std::string(media_type::layer_blob)}, unix_now()));
            TRY(m_s.cache.record_layer(key, *record, unix_now()));
        }
        return record;
    };
    const auto reuse = [&](const LayerRecord& r) {
        descriptor.digest = r.digest;
        descriptor.diff_id = r.diff_id;
        descriptor.size = r.size;
        ++outcome.layers_reused;
        return descriptor;
    };

    auto found = lookup();
    if (!found) {
        return unexpected(server_fault(found.error(), "layer " + key));
    }
    if (*found) {
        return reuse(**found);
    }
    // Another build may be packing the same layer: wait as long as nginx
    // waits for us, then say so rather than let nginx time out.
    auto lock = m_s.locks.acquire("layer:" + key, time_left());
    if (!lock) {
        return unexpected(server_fault(lock.error(), "layer " + key));
    }
    if (!*lock) {
        return unexpected(
            RegistryError{503,
                          "UNAVAILABLE",
                          "another build is still packing a layer of this image; retry later",
                          {}});
    }
    found = lookup();
    if (!found) {
        return unexpected(server_fault(found.error(), "layer " + key));
    }
    if (*found) {
        return reuse(**found);
    }

    const auto pack = [&]() -> Result<LayerRecord> {
        TRY_ASSIGN(auto staged, StagingFile::create(m_s.storage.staging_dir()));
        TRY_ASSIGN(auto writer,
                   LayerWriter::open(staged.fd(), staged.path(), PackOptions{compression}));
        if (top) {
            TRY_ASSIGN(const auto plan, plan_top_layer(paths));
            TRY(add_top_layer(*writer, plan));
        } else {
            TRY(add_store_paths(*writer, paths));
        }
        TRY_ASSIGN(const auto packed, writer->finish());
        TRY(m_s.storage.persist(std::move(staged), blob_key(packed.digest.substr(7)),
                                media_type::layer_blob));
        const LayerRecord record{packed.digest, packed.diff_id, packed.size};
        TRY(m_s.cache.record_blob({packed.digest, packed.size, std::string(media_type::layer_blob)},
                                  unix_now()));
        TRY(m_s.cache.record_layer(key, record, unix_now()));
        TRY(m_s.storage.put(layer_record_key(key), encode_layer_record(record),
                            "application/json"));
        return record;
    };
    const auto started = precise_now();
    auto packed = pack();
    if (!packed) {
        return unexpected(server_fault(packed.error(), "layer " + key));
    }
    log::info("layer packed",
              {{"digest", packed->digest},
               {"size", packed->size},
               {"compression", compression == LayerCompression::zstd ? "zstd" : "gzip"},
               {"paths", paths.size()},
               {"duration", precise_now() - started}});
    descriptor.digest = packed->digest;
    descriptor.diff_id = packed->diff_id;
    descriptor.size = packed->size;
    ++outcome.layers_built;
    outcome.bytes_packed += packed->size;
    return descriptor;
}

Result<std::string, RegistryError> Builder::store_document(std::string_view data,
                                                           std::string_view media_type) {
    const auto digest = sha256_digest(data);
    const auto store = [&]() -> Result<void> {
        const auto key = blob_key(digest.substr(7));
        TRY_ASSIGN(const bool stored, m_s.storage.exists(key));
        if (!stored) {
            TRY(m_s.storage.put(key, data, media_type));
        }
        return m_s.cache.record_blob({digest, data.size(), std::string(media_type)}, unix_now());
    };
    if (auto r = store(); !r) {
        return unexpected(server_fault(r.error(), "document " + digest));
    }
    return digest;
}

} // namespace nixery
