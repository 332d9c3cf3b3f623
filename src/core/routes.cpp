#include "core/routes.hpp"

#include "util/text.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace nixery {

namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

} // namespace

Route parse_route(std::string_view path) {
    Route route;
    if (path == "/") {
        route.kind = RouteKind::start_page;
        return route;
    }
    if (path == "/metrics") {
        route.kind = RouteKind::metrics;
        return route;
    }
    if (path == "/v2" || path == "/v2/") {
        route.kind = RouteKind::base;
        return route;
    }
    constexpr std::string_view prefix = "/v2/";
    if (path.substr(0, prefix.size()) != prefix) {
        route.kind = RouteKind::not_found;
        return route;
    }
    const auto rest = path.substr(prefix.size());
    route.kind = RouteKind::unsupported_api;
    if (ends_with(rest, "/tags/list")) {
        route.kind = RouteKind::tags;
        route.name = std::string(rest.substr(0, rest.size() - 10));
        return route;
    }
    for (const auto& [marker, kind] :
         {std::pair{std::string_view("/manifests/"), RouteKind::manifest},
          std::pair{std::string_view("/blobs/"), RouteKind::blob}}) {
        const auto pos = rest.rfind(marker);
        if (pos == std::string_view::npos || pos == 0) {
            continue;
        }
        const auto reference = rest.substr(pos + marker.size());
        // "blobs/uploads/…" is the push API, never a digest.
        if (reference.empty() || reference.find('/') != std::string_view::npos) {
            continue;
        }
        route.kind = kind;
        route.name = std::string(rest.substr(0, pos));
        route.reference = std::string(reference);
        return route;
    }
    return route;
}

std::string json_string(std::string_view text) {
    const auto valid = valid_utf8(text);
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.String(valid.data(), static_cast<rapidjson::SizeType>(valid.size()));
    return std::string(buf.GetString(), buf.GetSize());
}

std::string_view route_label(RouteKind route) {
    switch (route) {
    case RouteKind::base:
        return "base";
    case RouteKind::manifest:
        return "manifest";
    case RouteKind::blob:
        return "blob";
    case RouteKind::tags:
        return "tags";
    case RouteKind::start_page:
        return "start_page";
    case RouteKind::metrics:
        return "metrics";
    case RouteKind::unsupported_api:
        return "unsupported";
    case RouteKind::not_found:
        return "not_found";
    }
    return "not_found";
}

RegistryError name_invalid(std::string_view name) {
    return {400, "NAME_INVALID",
            "invalid repository name \"" + std::string(name) +
                "\": each path component must be lowercase letters and digits, optionally "
                "separated by '.', '_', '__' or '-', and the name at most 255 characters",
            json_string(name)};
}

RegistryError tag_invalid(std::string_view tag) {
    return {
        400, "TAG_INVALID",
        "invalid tag \"" + std::string(tag) +
            "\": a tag is 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'",
        json_string(tag)};
}

RegistryError digest_invalid(std::string_view digest) {
    return {400, "DIGEST_INVALID",
            "invalid digest \"" + std::string(digest) + "\": expected sha256:<64 hex digits>",
            json_string(digest)};
}

RegistryError blob_unknown(std::string_view digest) {
    return {404, "BLOB_UNKNOWN", "blob " + std::string(digest) + " is not known to this registry",
            json_string(digest)};
}

RegistryError manifest_unknown(std::string message, std::string detail) {
    return {404, "MANIFEST_UNKNOWN", std::move(message), std::move(detail)};
}

RegistryError unsupported(std::string message, int status) {
    return {status, "UNSUPPORTED", std::move(message), {}};
}

RegistryError internal_error(std::string message) {
    // Not a spec code; the spec allows others and clients print the message.
    return {500, "INTERNAL_ERROR", std::move(message), {}};
}

std::string error_json(const RegistryError& error) {
    // A request's path or a build's log may hold any bytes; JSON is UTF-8.
    const auto message = valid_utf8(error.message);
    const auto detail_text = valid_utf8(error.detail);
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("errors");
    w.StartArray();
    w.StartObject();
    w.Key("code");
    w.String(error.code.c_str(), static_cast<rapidjson::SizeType>(error.code.size()));
    w.Key("message");
    w.String(message.c_str(), static_cast<rapidjson::SizeType>(message.size()));
    if (!detail_text.empty()) {
        rapidjson::Document detail;
        detail.Parse<rapidjson::kParseIterativeFlag>(detail_text.c_str(), detail_text.size());
        w.Key("detail");
        if (detail.HasParseError()) {
            w.String(detail_text.c_str(), static_cast<rapidjson::SizeType>(detail_text.size()));
        } else {
            detail.Accept(w);
        }
    }
    w.EndObject();
    w.EndArray();
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize());
}

} // namespace nixery
