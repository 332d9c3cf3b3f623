#include "registry/registry.hpp"

#include "builder/usage.hpp"
#include "core/image.hpp"
#include "core/reference.hpp"
#include "registry/disclosure.hpp"
#include "registry/start_page.hpp"
#include "util/log.hpp"

#include <algorithm>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace nixery {

namespace {

constexpr std::string_view k_api_version = "registry/2.0";

Response with_api_version(Response r) {
    r.header("Docker-Distribution-API-Version", std::string(k_api_version));
    return r;
}

bool is_manifest_type(std::string_view media_type) {
    return media_type == media_type::docker_manifest || media_type == media_type::oci_manifest;
}

// The largest object read to learn whether it is a manifest: the
// distribution spec asks registries to take manifests of 4 MiB; anything
// larger is a layer, not worth loading.
constexpr std::uint64_t k_max_manifest_size = 4 << 20;

} // namespace

Response error_response(const RegistryError& error) {
    Response r;
    r.status = error.status;
    r.body = error_json(error);
    r.header("Content-Type", "application/json");
    r.log_fields.emplace_back("error", error.code);
    if (error.status == 405) {
        r.header("Allow", "GET, HEAD");
    }
    return with_api_version(std::move(r));
}

Result<std::unique_ptr<RegistryHandler>> RegistryHandler::open(const ProcessServices& services) {
    TRY_ASSIGN(auto db, Db::open(services.config.database(), services.config.data.sql_dir));
    return std::unique_ptr<RegistryHandler>(
        new RegistryHandler(services, BuildCache(std::move(db))));
}

RegistryHandler::RegistryHandler(const ProcessServices& services, BuildCache cache)
    : m_services(services), m_cache(std::move(cache)), m_nix(nix_settings(services.config)),
      m_source(make_source(services.config, m_nix)), m_disclosure(services.config) {}

Response RegistryHandler::refuse(RegistryError error) const {
    return error_response(m_disclosure.for_client(std::move(error), log::request_id()));
}

Response RegistryHandler::handle(const Request& request) {
    const auto route = parse_route(request.path);
    auto response = answer(request, route);
    response.route = route_label(route.kind);
    return response;
}

Response RegistryHandler::failed(const Request& request) {
    const auto err = internal_error("the server failed to answer this request");
    Response r{err.status, {{"Content-Type", "application/json"}}, error_json(err), {}, {}};
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
        return stored(request.method, route.name, route.reference, false);
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
        return stored(request.method, name, reference, true);
    }
    if (!is_valid_tag(reference)) {
        return refuse(tag_invalid(reference));
    }
    const auto image = parse_image_name(name);
    const auto format =
        negotiate_format(request.header_values("Accept"), m_services.config.layer_compression);
    Builder builder({m_services.config, m_services.popularity, *m_source, m_services.storage,
                     m_cache, m_services.locks, m_nix, m_services.metrics});
    auto served = builder.manifest(image, reference, format);
    if (!served) {
        auto r = refuse(served.error());
        r.log_fields.emplace_back("image", name);
        r.log_fields.emplace_back("tag", reference);
        return r;
    }
    Response r;
    r.body = std::move(served->body);
    r.header("Content-Type", served->media_type);
    r.header("Docker-Content-Digest", served->digest);
    r.log_fields.emplace_back("image", name);
    r.log_fields.emplace_back("tag", reference);
    return with_api_version(std::move(r));
}

Response RegistryHandler::stored(const std::string& method, const std::string& name,
                                 const std::string& digest, bool manifest) {
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
        log::error("serving stored object failed", {{"digest", digest}, {"error", e.message}});
        return refuse(internal_error("reading " + digest + " from storage failed"));
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
    std::string media_type(media_type::layer_blob);
    if (*record) {
        media_type = (*record)->media_type;
    } else if (manifest && !(*info)->content_type.empty()) {
        // Stored by another instance sharing the bucket, which kept the
        // type given at upload.
        media_type = (*info)->content_type;
    } else if (manifest) {
        // The filesystem keeps no type: a manifest says its own, and is
        // small; anything larger than a manifest can be is not one.
        if ((*info)->size > k_max_manifest_size) {
            return unknown();
        }
        auto body = m_services.storage.fetch(key);
        if (!body) {
            return fault(body.error());
        }
        media_type = *body ? document_media_type(**body) : std::string();
        if (media_type.empty()) {
            return unknown();
        }
    }
    if (manifest != is_manifest_type(media_type)) {
        return unknown(); // a layer asked for as a manifest, or the reverse
    }
    if (manifest) {
        record_manifest_pull(m_cache, m_services.storage, digest); // a use, for gc
    }
    auto location = m_services.storage.locate(key);
    if (!location) {
        return fault(location.error());
    }
    Response r;
    r.header("Docker-Content-Digest", digest);
    r.log_fields.emplace_back("image", name);
    r.log_fields.emplace_back("digest", digest);
    if (location->kind == BlobLocation::Kind::accel_redirect) {
        // nginx serves the file (with Content-Length and Range support, and
        // HEAD); it keeps our Content-Type.
        r.header("Content-Type", media_type);
        r.header("X-Accel-Redirect", location->location);
    } else if (method == "HEAD") {
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
    if (auto current = current_source(m_services.config)) {
        page.revision = std::move(current->provenance);
        page.revision_recorded_at = current->recorded_at;
    }
    page.minimal = m_services.config.start_page == StartPageKind::minimal;
    if (!page.minimal) {
        auto builds = m_cache.recent_builds(k_recent_builds);
        auto errors = m_cache.recent_builds(k_recent_errors, true);
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
        log::error("listing tags failed",
                   {{"image", name}, {"error", stored_tags.error().message}});
        return refuse(internal_error("listing tags of \"" + name + "\" failed"));
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
