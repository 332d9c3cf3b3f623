#include "registry/start_page.hpp"

#include "core/image.hpp"
#include "util/markup.hpp"
#include "util/timestamp.hpp"

#include <cmath>
#include <cstdio>

namespace nixery {

namespace {

constexpr std::string_view k_style = R"(
body { font-family: system-ui, sans-serif; max-width: 60em; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; }
code, pre { font-family: ui-monospace, monospace; font-size: 0.95em; }
pre { background: #f4f4f4; padding: 0.7em 1em; overflow-x: auto; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 0.25em 0.6em; border-bottom: 1px solid #ddd; }
td.n { text-align: right; }
.failed { color: #a00; }
.muted { color: #777; }
)";

std::string seconds_text(double seconds) {
    char buf[32];
    // Rounded before the unit is chosen: 119.6 s is 2 min 00 s, not 120 s.
    const long whole = std::lround(seconds);
    if (seconds < 9.995) {
        std::snprintf(buf, sizeof buf, "%.2f s", seconds);
    } else if (whole < 120) {
        std::snprintf(buf, sizeof buf, "%ld s", whole);
    } else {
        std::snprintf(buf, sizeof buf, "%ld min %02ld s", whole / 60, whole % 60);
    }
    return buf;
}

std::string outcome_text(const BuildRecord& b) {
    if (!b.status) {
        return "building";
    }
    if (*b.status == 200) {
        return "built";
    }
    return "failed (" + std::to_string(*b.status) + ")";
}

void builds_table(std::string& out, const std::vector<BuildRecord>& builds) {
    out += "<table>\n<tr><th>image</th><th>tag</th><th>started (UTC)</th><th>duration</th>"
           "<th>layers built</th><th>layers reused</th><th>result</th></tr>\n";
    for (const auto& b : builds) {
        const bool failed = b.status && *b.status != 200;
        out += "<tr><td><code>" + escape_markup(b.image) + "</code></td><td><code>" +
               escape_markup(b.tag) + "</code></td><td>" +
               format_utc(static_cast<std::int64_t>(b.started_at)) + "</td><td>" +
               (b.duration ? seconds_text(*b.duration) : "…") + "</td><td class=\"n\">" +
               std::to_string(b.layers_built) + "</td><td class=\"n\">" +
               std::to_string(b.layers_reused) + "</td><td" + (failed ? " class=\"failed\"" : "") +
               ">" + outcome_text(b) + "</td></tr>\n";
    }
    out += "</table>\n";
}

// The revision and content hash, as the images' labels carry them
// (org.nixos.nixery.source.revision and .hash).
void revision_text(std::string& out, const StartPage& page) {
    const auto& r = page.revision;
    if (r.type.empty()) {
        out += "<p class=\"muted\">Current revision: not known yet (it is recorded when a "
               "<code>latest</code> image is built).</p>\n";
        return;
    }
    out += "<p>Current revision:";
    if (!r.revision.empty()) {
        out += " <code>" + escape_markup(r.revision) + "</code>";
    }
    if (!r.hash.empty()) {
        out += std::string(r.revision.empty() ? "" : ",") + " content hash <code>" +
               escape_markup(r.hash) + "</code>";
    }
    if (r.revision.empty() && r.hash.empty()) {
        out += " not reported by the source";
    }
    out += " <span class=\"muted\">(as of the last build of a <code>latest</code> image, " +
           format_utc(page.revision_recorded_at) + " UTC)</span></p>\n";
}

} // namespace

std::string render_start_page(const StartPage& page) {
    const auto host = escape_markup(page.host.empty() ? "HOST" : page.host);
    const std::string insecure = page.tls ? "" : "--tls-verify=false ";
    std::string shell;
    for (const auto& p : shell_packages()) {
        shell += (shell.empty() ? "" : ", ") + ("<code>" + escape_markup(p) + "</code>");
    }
    std::string implicit;
    for (const auto& p : implicit_packages()) {
        implicit += (implicit.empty() ? "" : " and ") + ("<code>" + escape_markup(p) + "</code>");
    }

    std::string out;
    out += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
           "<title>nixery · " +
           host + "</title>\n<style>" + std::string(k_style) + "</style>\n</head>\n<body>\n";
    out += "<h1>nixery</h1>\n<p>Container images built on demand with Nix. The image name is "
           "the list of packages: each path component is a package of the package set, in any "
           "order (<code>a/b</code> and <code>b/a</code> are the same image).</p>\n";

    out += "<h2>Pull from this host</h2>\n<pre>docker pull " + host + "/shell/hello\npodman pull " +
           insecure + host + "/figlet\nskopeo copy " +
           (page.tls ? std::string() : "--src-tls-verify=false ") + "docker://" + host +
           "/shell/hello oci:hello:latest</pre>\n";
    if (page.platforms.size() > 1) {
        std::string names;
        for (const auto& p : page.platforms) {
            names += (names.empty() ? "" : ", ") + ("<code>" + escape_markup(p) + "</code>");
        }
        out += "<p>Every image is built for " + names +
               ": a client gets the image of its platform (<code>docker pull --platform "
               "linux/arm64</code>, <code>podman pull --arch arm64</code>).</p>\n";
    }
    out += "<p>A tag other than <code>latest</code> selects a revision of the package source "
           "where the source has revisions (a git repository: a branch, tag or commit).</p>\n";

    out += "<h2>Meta-packages</h2>\n<dl>\n<dt><code>shell</code></dt><dd>adds " + shell +
           "; the image runs <code>bash</code>. Only as the first component.</dd>\n"
           "<dt><code>arm64</code></dt><dd>builds the image for <code>aarch64-linux</code>. "
           "Only as the first component.</dd>\n</dl>\n<p>" +
           implicit + " are added to every image when the package set has them.</p>\n";

    out += "<h2>Package source</h2>\n<p>" + escape_markup(page.source) + "</p>\n";
    revision_text(out, page);

    if (page.minimal) {
        out += "</body>\n</html>\n";
        return out;
    }

    out += "<h2>Recent builds</h2>\n";
    if (page.history_unavailable) {
        out += "<p class=\"muted\">The build history cannot be read right now.</p>\n";
    } else if (page.builds.empty()) {
        out += "<p class=\"muted\">Nothing built yet: pull an image to start.</p>\n";
    } else {
        builds_table(out, page.builds);
    }

    out += "<h2>Recent build errors</h2>\n";
    if (!page.history_unavailable && page.errors.empty()) {
        out += "<p class=\"muted\">None.</p>\n";
    }
    for (const auto& b : page.errors) {
        out += "<h3><code>" + escape_markup(b.image) + ":" + escape_markup(b.tag) +
               "</code></h3>\n" + "<p class=\"muted\">" +
               format_utc(static_cast<std::int64_t>(b.started_at)) + " UTC, " + outcome_text(b) +
               "</p>\n<pre>" + escape_markup(b.error) + "</pre>\n";
    }
    out += "</body>\n</html>\n";
    return out;
}

} // namespace nixery
