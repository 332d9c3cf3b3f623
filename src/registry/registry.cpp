#include "registry/registry.hpp"

#include "builder/usage.hpp"
#include "core/image.hpp"
#include "core/platform.hpp"
#include "core/reference.hpp"
#include "nix/source.hpp"
#include "registry/disclosure.hpp"
#include "registry/start_page.hpp"
#include "util/files.hpp"
#include "util/log.hpp"

#include <algorithm>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <semaphore>

namespace nixery {

namespace {

constexpr std::string_view k_api_version = "registry/2.0";

Response with_api_version(Response r) {
    r.header("Docker-Distribution-API-Version", std::string(k_api_version));
    return r;
}

// The largest object read to learn whether it is a manifest: the
// distribution spec asks registries to take manifests of 4 MiB; anything
// larger is a layer, not worth loading.
constexpr std::uint64_t k_max_manifest_size = 4 << 20;

// The longest nginx answers a manifest from its cache without the pool.
// Every use of an image must reach the pool, which records it for gc
// (builder/usage.hpp), within a minute, as when the pool saw every pull.
// A pinned commit too: nginx (without the commercial purge) cannot drop an
// entry when gc removes the image's blobs, so only the cap keeps a cached
// manifest from outliving them; and one pool request a minute per entry
// costs nothing next to the requests nginx answers meanwhile.
constexpr std::chrono::seconds k_max_manifest_cache{60};

// How long nginx may answer the manifest of `tag` from its cache. A commit
// names the same content for good; a tag that can move is answered from the
// cache for NIXERY_TAG_CACHE_SECONDS, or by default: for a git ref (which
// the pool resolves from refs at most NIXERY_GIT_REFS_TTL old) 10 s;
// for a path or a channel name no later than its evaluation may be trusted
// anyway (NIXERY_SOURCE_TTL).
std::chrono::seconds manifest_cache_time(const Config& config, std::string_view tag) {
    const bool pinned =
        (config.source == SourceKind::git && is_commit_hash(tag)) ||
        (config.source == SourceKind::channel && is_commit_hash(config.source_location));
    if (pinned) {
        return k_max_manifest_cache;
    }
    if (config.tag_cache.count() >= 0) {
        return std::min(config.tag_cache, k_max_manifest_cache);
    }
    if (config.source == SourceKind::git) {
        return std::chrono::seconds(10);
    }
    return std::min(config.source_ttl, k_max_manifest_cache);
}

// Lets nginx answer GET and HEAD from `r` for less than `time`. nginx
// counts in whole seconds of its clock: an entry valid for N seconds may be
// served until almost N + 1 seconds after it was stored, so it gets one
// second less (and a time of a second is no caching at all).
void cache_in_nginx(Response& r, std::chrono::seconds time) {
    const auto seconds = time.count() - 1;
    if (seconds > 0) {
        r.header("X-Accel-Expires", std::to_string(seconds));
        r.body_for_head = true;
    }
}

// nginx writes a response it may cache to a file while it sends it, and cuts
// the client's transfer when that write fails (a full disk). With less than
// this left where its cache is (the state directory for `nixery run`, the
// same filesystem as the state in a usual deployment), manifests go out
// without X-Accel-Expires: uncached, but whole.
constexpr std::uint64_t k_nginx_cache_room = 1 << 20;

std::chrono::seconds if_nginx_has_room(const Config& config, std::chrono::seconds time) {
    const auto room = free_space(config.state_dir);
    return room && *room < k_nginx_cache_room ? std::chrono::seconds(0) : time;
}

// A manifest by tag: its body depends on Accept, so no shared cache may hand
// an OCI manifest to a Docker client (nginx's own keeps one variant per
// Accept), and nginx may answer it for `cache_time`.
Response manifest_response(ServedManifest served, std::chrono::seconds cache_time) {
    Response r;
    r.body = std::move(served.body);
    r.header("Content-Type", served.media_type);
    r.header("Docker-Content-Digest", served.digest);
    r.header("Vary", "Accept");
    cache_in_nginx(r, cache_time);
    return with_api_version(std::move(r));
}

} // namespace

Response error_response(const RegistryError& error) {
    Response r;
    r.status = error.status;
    r.body = error_json(error);
    r.header("Content-Type", "application/json");
    r.log_fields.emplace_back("error", error.code);
    if (error.status >= 500) {
        // The server's fault: its cause goes in the request's one log line.
        r.log_fields.emplace_back("error_message", error.message);
    }
    if (error.status == 405) {
        r.header("Allow", "GET, HEAD");
    }
    if (error.retry_after > 0) {
        r.header("Retry-After", std::to_string(error.retry_after));
    } else if (error.status == 429 || error.status == 503) {
        r.header("Retry-After", "10");
    }
    return with_api_version(std::move(r));
}

Response failure_response(const Disclosure& disclosure, const Failure& failure) {
    auto r = error_response(disclosure.for_client(registry_error(failure), log::request_id()));
    if (!failure.what.empty()) {
        r.log_fields.emplace_back("failure", failure.what);
    }
    if (!failure.internal.empty()) {
        r.log_fields.emplace_back("cause", failure.internal);
    }
    if (failure.remembered) {
        r.log_fields.emplace_back("remembered", true);
    } else if (needs_operator(failure.kind)) {
        r.log_level = log::Level::error;
    }
    return r;
}

Result<std::unique_ptr<RegistryHandler>> RegistryHandler::open(const ProcessServices& services) {
    TRY_ASSIGN(auto parts, BuilderParts::open(services));
    return std::unique_ptr<RegistryHandler>(new RegistryHandler(services, std::move(parts)));
}

RegistryHandler::RegistryHandler(const ProcessServices& services,
                                 std::unique_ptr<BuilderParts> parts)
    : m_services(services), m_parts(std::move(parts)), m_cache(m_parts->cache()),
      m_disclosure(services.config) {}

Response RegistryHandler::refuse(RegistryError error) const {
    return error_response(m_disclosure.for_client(std::move(error), log::request_id()));
}

Response RegistryHandler::refuse(const Failure& failure) const {
    return failure_response(m_disclosure, failure);
}

Response RegistryHandler::handle(const Request& request) {
    const auto route = parse_route(request.path);
    auto response = answer(request, route);
    response.route = route_label(route.kind);
    return response;
}

Response RegistryHandler::failed(const Request& request) {
    const auto err = internal_error("the server failed to answer this request");
    Response r;
    r.status = err.status;
    r.header("Content-Type", "application/json");
    r.body = error_json(err);
    r.route = route_label(parse_route(request.path).kind);
    return r;
}

Response RegistryHandler::busy(const Request& request) {
    auto r = error_response(registry_error(
        {FailureKind::overloaded, {}, "too many requests wait for builds; retry later", {}, {}}));
    r.route = route_label(parse_route(request.path).kind);
    return r;
}

Response RegistryHandler::answer(const Request& request, const Route& route) {
    if (request.method != "GET" && request.method != "HEAD") {
        return refuse(unsupported("this registry serves pulls only: " + request.method +
                                  " is not supported (images are built from their names, "
                                  "not pushed)"));
    }
    switch (route.kind) {
    case RouteKind::base: {
        Response r;
        r.body = "{}";
        r.header("Content-Type", "application/json");
        return with_api_version(std::move(r));
    }
    case RouteKind::manifest:
        return manifest(request, route.name, route.reference);
    case RouteKind::blob:
        if (!is_valid_repository_name(route.name)) {
            return refuse(name_invalid(route.name));
        }
        return stored(request, route.name, route.reference, Stored::blob);
    case RouteKind::tags:
        return tags(request, route.name);
    case RouteKind::unsupported_api:
        return refuse(
            unsupported("\"" + request.path + "\" is not an endpoint this registry serves", 404));
    case RouteKind::start_page:
        return start_page(request);
    case RouteKind::metrics: {
        Response r;
        r.body = m_services.metrics.render();
        r.header("Content-Type", std::string(Metrics::k_content_type));
        r.header("Cache-Control", "no-store");
        return r;
    }
    case RouteKind::not_found:
        break;
    }
    return refuse({404, "NOT_FOUND", "nothing here: the registry API is under /v2/", {}});
}

Response RegistryHandler::manifest(const Request& request, const std::string& name,
                                   const std::string& reference) {
    if (!is_valid_repository_name(name)) {
        return refuse(name_invalid(name));
    }
    if (looks_like_digest(reference)) {
        return stored(request, name, reference, Stored::manifest);
    }
    if (!is_valid_tag(reference)) {
        return refuse(tag_invalid(reference));
    }
    const auto choice =
        negotiate_manifest(request.header_values("Accept"), m_services.config.layer_compression);
    auto builder = m_parts->builder();
    const auto logged = [&](Response r) {
        r.log_fields.emplace_back("image", name);
        r.log_fields.emplace_back("tag", reference);
        return r;
    };
    auto targets = builder.resolve(parse_image_name(name), reference, choice);
    if (!targets) {
        return logged(refuse(targets.error()));
    }
    const bool several = targets->size() > 1;
    std::vector<Builder::Found> found;
    for (const auto& target : *targets) {
        auto one = builder.find(target.resolved);
        if (!one) {
            return logged(
                refuse(several ? platform_failure(one.error(), target.image.arch) : one.error()));
        }
        if (*one) {
            found.push_back({target.image.arch, std::move(**one)});
        }
    }
    if (found.size() < targets->size()) {
        // nginx's manifest location caches, and a cacheable request is not
        // given up when its client hangs up (nginx reads on to fill the
        // cache), so a wait there would keep abandoned builds alive: a
        // build is waited for in @manifest_build, which does not cache
        // (nginx/locations.conf.in), and sets NIXERY_WAIT.
        if (request.param("NIXERY_WAIT").empty()) {
            Response r;
            r.header("X-Accel-Redirect", "@manifest_build");
            r.log_fields.emplace_back("handed_to", "@manifest_build");
            r.counted = false;
            return logged(with_api_version(std::move(r)));
        }
        return after_build(name, reference, choice, std::move(*targets));
    }
    auto served = builder.serve(found, name, reference, choice);
    if (!served) {
        return logged(refuse(served.error()));
    }
    return logged(manifest_response(
        std::move(*served),
        if_nginx_has_room(m_services.config, manifest_cache_time(m_services.config, reference))));
}

namespace {

// The answer to a request for a build while the worker drains.
Failure restarting() {
    return busy("the server is restarting; retry shortly");
}

// At most this many waiters of one process read a built image at once.
std::counting_semaphore<> g_answering(16);

struct AnswerSlot {
    AnswerSlot() { g_answering.acquire(); }
    ~AnswerSlot() { g_answering.release(); }
    AnswerSlot(const AnswerSlot&) = delete;
    AnswerSlot& operator=(const AnswerSlot&) = delete;
};

} // namespace

Response RegistryHandler::after_build(const std::string& name, const std::string& tag,
                                      const ManifestChoice& choice,
                                      std::vector<Builder::Target> targets) {
    auto& jobs = m_services.jobs;
    const bool several = targets.size() > 1;
    if (worker_stopping()) {
        // A build queued now would hold up the drain that answers this.
        auto r = refuse(restarting());
        r.log_fields.emplace_back("image", name);
        r.log_fields.emplace_back("tag", tag);
        return r;
    }
    // One job per platform, which requests for that platform alone (an
    // "arm64/" name) share; the board runs them in parallel.
    std::vector<JobTicket> tickets;
    const auto leave_all = [&jobs](const std::vector<JobTicket>& held, Leaving how) {
        for (const auto& t : held) {
            jobs.leave(t, how);
        }
    };
    for (const auto& target : targets) {
        const auto joined =
            jobs.join({target.resolved.key, target.image.name, tag, log::request_id()});
        if (!joined || !*joined) {
            leave_all(tickets, Leaving::gone);
            auto r =
                refuse(!joined ? fault("queueing the build of \"" + target.image.name + "\" failed",
                                       joined.error().message)
                               : Failure{FailureKind::overloaded,
                                         {},
                                         "too many images are waiting to be built (" +
                                             std::to_string(m_services.config.max_queued_builds) +
                                             "); retry later",
                                         {},
                                         {}});
            r.log_fields.emplace_back("image", name);
            r.log_fields.emplace_back("tag", tag);
            return r;
        }
        tickets.push_back(**joined);
    }
    const auto arrived = std::chrono::steady_clock::now();
    // The tickets are left by the answer below, or here when the worker
    // never runs it (too many requests wait already: Response::later is
    // dropped for a 429).
    struct Held {
        JobBoard& board;
        std::vector<JobTicket> tickets;
        bool left = false;
        Held(JobBoard& b, std::vector<JobTicket> t) : board(b), tickets(std::move(t)) {}
        Held(const Held&) = delete;
        Held& operator=(const Held&) = delete;
        ~Held() {
            if (!left) {
                // Its client got a 429 and retries: a queued job keeps
                // its place a while for the retry to join.
                for (const auto& t : tickets) {
                    board.leave(t, Leaving::revisit);
                }
            }
        }
    };
    auto held = std::make_shared<Held>(jobs, tickets);
    Response r;
    r.later = [services = m_services, disclosure = m_disclosure, name, tag, choice, several,
               targets = std::move(targets), tickets, arrived, held](ResponseWriter& w) {
        const auto refused = [&](const Failure& failure) {
            return failure_response(disclosure, failure);
        };
        w.log_fields.emplace_back("image", name);
        w.log_fields.emplace_back("tag", tag);
        const auto& config = services.config;
        auto& board = services.jobs;
        std::vector<std::optional<JobBoard::WaitResult>> results(tickets.size());
        const auto leave = [&](Leaving how) {
            held->left = true;
            for (const auto& t : tickets) {
                board.leave(t, how);
            }
        };
        const auto failed = [&](std::size_t i) {
            return results[i] && results[i]->outcome != JobOutcome::succeeded;
        };
        // Waits for the jobs until `until`: ended when all have, or as soon
        // as one has failed, which fails the request whatever the others do
        // (before its headers, when it can). Each is waited for in turn a
        // slice at a time, so a later one's failure is seen while an
        // earlier one still builds.
        const auto wait_all = [&](JobBoard::Clock::time_point until,
                                  const std::function<bool()>& give_up) {
            constexpr auto k_slice = std::chrono::milliseconds(250);
            for (;;) {
                bool all = true;
                for (std::size_t i = 0; i < tickets.size(); ++i) {
                    if (results[i]) {
                        continue;
                    }
                    const auto slice = std::min(until, JobBoard::Clock::now() + k_slice);
                    auto waited = board.wait(tickets[i], slice, give_up);
                    if (waited.how == JobBoard::Waited::given_up) {
                        return waited.how;
                    }
                    if (waited.how == JobBoard::Waited::timed_out) {
                        all = false;
                        continue;
                    }
                    results[i] = std::move(waited);
                    if (failed(i)) {
                        return JobBoard::Waited::ended;
                    }
                }
                if (all) {
                    return JobBoard::Waited::ended;
                }
                if (JobBoard::Clock::now() >= until) {
                    return JobBoard::Waited::timed_out;
                }
            }
        };
        // The answer once the jobs have ended: from the cache, as if it had
        // been there when the request came.
        const auto answer = [&]() -> Result<ServedManifest, Failure> {
            // Hundreds of requests waiting for one build wake together; each
            // opening its SQLite connection (three descriptors) at once would
            // run a worker out of them (nixery.service: LimitNOFILE=1024).
            const AnswerSlot slot;
            auto parts = BuilderParts::open(services);
            if (!parts) {
                return unexpected(fault("reading the built image failed", parts.error().message));
            }
            auto builder = (*parts)->builder();
            // A job that failed first: it decides the answer, whether or
            // not the others have ended.
            std::vector<std::size_t> order;
            for (std::size_t i = 0; i < targets.size(); ++i) {
                if (failed(i)) {
                    order.push_back(i);
                }
            }
            for (std::size_t i = 0; i < targets.size(); ++i) {
                if (!failed(i)) {
                    order.push_back(i);
                }
            }
            std::vector<Builder::Found> found;
            for (const auto i : order) {
                const auto& target = targets[i];
                const auto named = [&](Failure f) {
                    return several ? platform_failure(std::move(f), target.image.arch) : f;
                };
                auto built = builder.built_at(target, tag);
                if (!built) {
                    return unexpected(named(built.error()));
                }
                if (!*built && results[i] && results[i]->failure) {
                    // The job's failure, which the cache could not remember
                    // (a full disk, most likely).
                    return unexpected(named(*results[i]->failure));
                }
                if (!*built) {
                    return unexpected(named(nixery::busy(
                        "the build of \"" + target.image.name +
                        "\" ended without an image (its source moved again meanwhile?); retry")));
                }
                found.push_back({target.image.arch, std::move(**built)});
            }
            return builder.serve(found, name, tag, choice);
        };
        const auto ended = [&]() -> Result<ServedManifest, Failure> {
            leave(Leaving::done);
            for (std::size_t i = 0; i < targets.size(); ++i) {
                if (results[i] && results[i]->outcome == JobOutcome::lost) {
                    return unexpected(nixery::busy("the build of \"" + targets[i].image.name +
                                                   "\" was interrupted; retry"));
                }
            }
            return answer();
        };
        const auto gone = [&] { return w.client_gone() || w.stopping(); };

        auto how = wait_all(arrived + config.header_deadline, gone);
        if (how == JobBoard::Waited::ended) {
            auto served = ended();
            w.send(served ? manifest_response(
                                std::move(*served),
                                if_nginx_has_room(config, manifest_cache_time(config, tag)))
                          : refused(served.error()));
            return;
        }
        if (how == JobBoard::Waited::given_up) {
            leave(w.client_gone() ? Leaving::gone : Leaving::done);
            if (!w.client_gone()) {
                w.send(refused(restarting()));
            }
            return;
        }
        // Not ready by the deadline: the headers now, before clients give
        // up (containerd waits 30 s for them), without a digest or length
        // (a client then takes the digest from the body).
        const auto type = several && choice.index ? index_media_type(*choice.index)
                                                  : manifest_media_type(choice.format);
        w.start(200, {{"Content-Type", std::string(type)},
                      {"Vary", "Accept"},
                      {"Docker-Distribution-API-Version", std::string(k_api_version)}});
        if (w.head_only()) {
            // Its GET follows: a queued job keeps its place a while.
            leave(Leaving::revisit);
            return;
        }
        how = wait_all(arrived + config.request_timeout() - std::chrono::minutes(1),
                       [&] { return w.client_gone(); });
        if (how != JobBoard::Waited::ended) {
            leave(Leaving::gone);
            w.abort();
            return;
        }
        auto served = ended();
        if (!served) {
            // Too late for a status: the failure is remembered, and the
            // client's retry gets it as a registry error.
            w.log_fields.emplace_back("error", registry_error(served.error()).code);
            if (!served.error().internal.empty()) {
                w.log_fields.emplace_back("cause", served.error().internal);
            }
            if (needs_operator(served.error().kind) && !served.error().remembered) {
                w.log_level = log::Level::error;
            }
            w.abort();
            return;
        }
        w.send_body(served->body);
    };
    return r;
}

Response RegistryHandler::stored(const Request& request, const std::string& name,
                                 const std::string& digest, Stored kind) {
    const bool manifest = kind == Stored::manifest;
    const auto unknown = [&] {
        return refuse(
            manifest ? manifest_unknown("manifest " + digest + " is not known to this registry",
                                        json_string(digest))
                     : blob_unknown(digest));
    };
    switch (check_digest(digest)) {
    case DigestCheck::malformed:
        return refuse(digest_invalid(digest));
    case DigestCheck::unsupported:
        return unknown(); // this registry only ever stores sha256 blobs
    case DigestCheck::ok:
        break;
    }
    const auto key = blob_key(digest.substr(7));
    const auto fault = [&](const Error& e) {
        auto failure = nixery::fault("reading " + digest + " from storage failed", e.message);
        failure.what = "serving stored object failed";
        return refuse(failure);
    };
    auto info = m_services.storage.stat(key);
    if (!info) {
        return fault(info.error());
    }
    if (!*info) {
        return unknown();
    }
    auto record = m_cache.find_blob(digest);
    if (!record) {
        return fault(record.error());
    }
    // Stored by another instance sharing the storage when there is no
    // record: a bucket kept the type given at upload; the filesystem keeps
    // none, but a manifest and a config say theirs, and are small.
    std::string media_type;
    if (*record) {
        media_type = (*record)->media_type;
    } else if (!(*info)->content_type.empty()) {
        media_type = (*info)->content_type;
    } else if ((*info)->size <= k_max_manifest_size) {
        auto body = m_services.storage.fetch(key);
        if (!body) {
            return fault(body.error());
        }
        media_type = *body ? document_media_type(**body) : std::string();
    }
    if (media_type.empty()) {
        if (manifest) {
            return unknown();
        }
        media_type = media_type::layer_blob;
    }
    if (manifest != is_manifest_media_type(media_type)) {
        return unknown(); // a layer asked for as a manifest, or the reverse
    }
    if (manifest) {
        record_manifest_pull(m_cache, m_services.storage, digest); // a use, for gc
        // nginx sends it alone for the rest of this minute of its clock
        // (nginx/storage-location.conf.in); the next minute's first pull
        // comes here again and is recorded.
        const auto minute = request.param("NIXERY_USE_MINUTE");
        if (auto direct = minute.empty()
                              ? Result<void>()
                              : m_services.storage.serve_manifest_directly(key, media_type, minute);
            !direct) {
            log::warn("letting nginx serve a manifest failed",
                      {{"digest", digest}, {"error", direct.error().message}});
        }
    }
    auto location = m_services.storage.locate(key);
    if (!location) {
        return fault(location.error());
    }
    Response r;
    r.header("Docker-Content-Digest", digest);
    r.log_fields.emplace_back("image", name);
    r.log_fields.emplace_back("digest", digest);
    if (location->kind == BlobLocation::Kind::accel_redirect && manifest) {
        // Small: the body itself, which nginx sends with Range support.
        // It came through @pool, which caches nothing: the minute's link
        // made above answers the next requests.
        auto body = m_services.storage.fetch(key);
        if (!body) {
            return fault(body.error());
        }
        if (!*body) {
            return unknown(); // removed meanwhile
        }
        r.body = std::move(**body);
        r.header("Content-Type", media_type);
    } else if (location->kind == BlobLocation::Kind::accel_redirect) {
        // nginx serves the file (with Content-Length and Range support, and
        // HEAD); it keeps our Content-Type. From now on it serves it
        // without asking (nginx/storage-location.conf.in).
        if (auto direct = m_services.storage.serve_directly(key, media_type); !direct) {
            log::warn("letting nginx serve a blob failed",
                      {{"digest", digest}, {"error", direct.error().message}});
        }
        r.header("Content-Type", media_type);
        r.header("X-Accel-Redirect", location->location);
    } else if (request.method == "HEAD") {
        // The URL is signed for GET: a client following it with HEAD (as
        // containerd checks a digest) would be refused by the store.
        r.header("Content-Type", media_type);
        r.header("Content-Length", std::to_string((*info)->size));
    } else {
        r.status = 307;
        r.header("Location", location->location);
        r.log_fields.emplace_back("redirect", log::redact_url(location->location));
    }
    return with_api_version(std::move(r));
}

Response RegistryHandler::start_page(const Request& request) {
    constexpr int k_recent_builds = 20;
    constexpr int k_recent_errors = 10;
    StartPage page;
    page.host = request.host;
    const auto https = std::find_if(request.params.begin(), request.params.end(),
                                    [](const auto& p) { return p.first == "HTTPS"; });
    page.tls = https != request.params.end() && !https->second.empty();
    page.source = m_services.config.describe_source();
    for (const auto arch : m_services.config.platforms) {
        page.platforms.push_back(platform_name(arch));
    }
    if (auto current = current_source(m_services.config)) {
        page.revision = std::move(current->provenance);
        page.revision_recorded_at = current->recorded_at;
    }
    page.minimal = m_services.config.start_page == StartPageKind::minimal;
    if (!page.minimal) {
        auto builds = m_cache.recent_builds(k_recent_builds);
        auto errors = m_cache.recent_builds(k_recent_errors, BuildCache::Builds::failed);
        if (builds && errors) {
            page.builds = std::move(*builds);
            page.errors = std::move(*errors);
        } else {
            page.history_unavailable = true;
            log::error("reading the build history failed",
                       {{"error", (builds ? errors.error() : builds.error()).message}});
        }
        // Stored messages are shown to anyone: no server internals.
        for (auto& b : page.errors) {
            b.error = m_disclosure.scrub(b.error);
        }
        for (auto& b : page.builds) {
            b.error = m_disclosure.scrub(b.error);
        }
    }
    Response r;
    r.body = render_start_page(page);
    r.header("Content-Type", "text/html; charset=utf-8");
    r.header("Content-Security-Policy", std::string(k_start_page_csp));
    r.header("X-Content-Type-Options", "nosniff");
    r.header("Cache-Control", "no-cache");
    return r;
}

Response RegistryHandler::tags(const Request& request, const std::string& name) {
    if (!is_valid_repository_name(name)) {
        return refuse(name_invalid(name));
    }
    auto stored_tags = m_cache.tags(name);
    if (!stored_tags) {
        auto failure =
            fault("listing tags of \"" + name + "\" failed", stored_tags.error().message);
        failure.what = "listing tags failed";
        auto r = refuse(failure);
        r.log_fields.emplace_back("image", name);
        return r;
    }
    auto all = std::move(*stored_tags);
    if (std::find(all.begin(), all.end(), "latest") == all.end()) {
        all.push_back("latest");
    }
    std::sort(all.begin(), all.end());

    // Pagination as the spec describes it: n entries after `last`.
    const auto last = request.query_param("last");
    if (!last.empty()) {
        all.erase(all.begin(), std::upper_bound(all.begin(), all.end(), last));
    }
    const auto n_text = request.query_param("n");
    bool more = false;
    if (!n_text.empty()) {
        const auto n =
            n_text.find_first_not_of("0123456789") == std::string::npos && n_text.size() < 6
                ? std::stoul(n_text)
                : all.size();
        if (all.size() > n) {
            all.resize(n);
            more = true;
        }
    }

    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("name");
    w.String(name.c_str(), static_cast<rapidjson::SizeType>(name.size()));
    w.Key("tags");
    w.StartArray();
    for (const auto& t : all) {
        w.String(t.c_str(), static_cast<rapidjson::SizeType>(t.size()));
    }
    w.EndArray();
    w.EndObject();
    Response r;
    r.body.assign(buf.GetString(), buf.GetSize());
    r.header("Content-Type", "application/json");
    if (more && !all.empty()) {
        r.header("Link", "</v2/" + name + "/tags/list?n=" + n_text + "&last=" + all.back() +
                             ">; rel=\"next\"");
    }
    r.log_fields.emplace_back("image", name);
    return with_api_version(std::move(r));
}

} // namespace nixery
