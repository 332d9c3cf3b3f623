// The start page at "/": what a person who opens the registry in a browser
// needs (like the seed's public instance): how to pull from this host, the
// meta-packages, the package source in use and its current revision, the
// most recent builds and the
// most recent build errors with Nix's message. Rendering only, from values.
// Every value that comes from a request, the package set, the database or
// Nix is HTML-escaped, and the page has no scripts (its Content-Security-
// Policy forbids them), so an image name or a Nix message cannot inject
// markup.
#pragma once

#include "cache/build_cache.hpp"
#include "core/provenance.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace nixery {

struct StartPage {
    std::string host;   // the request's Host header; empty: a placeholder is shown
    bool tls = true;    // the request came over HTTPS
    std::string source; // Config::describe_source()
    // NIXERY_PLATFORMS as people name them ("linux/amd64"); with more than
    // one, the page says that a client gets the image of its platform.
    std::vector<std::string> platforms;
    // What the last build of a "latest" image came from, and when it was
    // recorded; an empty type: not known yet.
    SourceProvenance revision;
    std::int64_t revision_recorded_at = 0;
    std::vector<BuildRecord> builds;  // newest first
    std::vector<BuildRecord> errors;  // failed builds, newest first
    bool history_unavailable = false; // reading the build history failed
    bool minimal = false;             // instructions only: no builds, no errors
};

// The whole HTML document.
std::string render_start_page(const StartPage& page);

// The Content-Security-Policy the page is served with.
inline constexpr std::string_view k_start_page_csp =
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'";

} // namespace nixery
