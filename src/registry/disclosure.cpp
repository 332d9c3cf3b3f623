#include "registry/disclosure.hpp"

#include "util/log.hpp"
#include "util/text.hpp"

#include <algorithm>
#include <filesystem>

namespace nixery {

namespace {

void add(std::vector<std::pair<std::string, std::string>>& out, std::string text,
         std::string placeholder) {
    // Paths of fewer than two components ("/", "/tmp") are too common to
    // replace in free text without garbling it.
    if (text.size() < 5) {
        return;
    }
    while (text.size() > 1 && text.back() == '/') {
        text.pop_back();
    }
    out.emplace_back(std::move(text), std::move(placeholder));
}

// A path where its name ends; any other private text (a key) everywhere.
void replace_private(std::string& text, std::string_view from, std::string_view to) {
    if (from.starts_with('/')) {
        replace_path(text, from, to);
        return;
    }
    for (auto pos = text.find(from); pos != std::string::npos;
         pos = text.find(from, pos + to.size())) {
        text.replace(pos, from.size(), to);
    }
}

// Whether `name` at `pos` in `text` stands where a bucket's name does in
// what the storage adapters and the stores write: after "://", "/", a
// quote, ">" or "=", and before the end, a separator or a quote. A bucket
// named like a common word ("images") stays in prose ("arm64 images").
bool names_bucket(std::string_view text, std::size_t pos, std::size_t size) {
    static constexpr std::string_view k_before = "/\"'>=";
    static constexpr std::string_view k_after = "/.\"'<?:, )\n";
    const bool before_ok = pos > 0 && k_before.find(text[pos - 1]) != std::string_view::npos;
    const bool after_ok =
        pos + size == text.size() || k_after.find(text[pos + size]) != std::string_view::npos;
    return before_ok && after_ok;
}

void replace_bucket(std::string& text, std::string_view bucket) {
    static constexpr std::string_view k_placeholder = "<bucket>";
    for (auto pos = text.find(bucket); pos != std::string::npos;) {
        if (names_bucket(text, pos, bucket.size())) {
            text.replace(pos, bucket.size(), k_placeholder);
            pos = text.find(bucket, pos + k_placeholder.size());
        } else {
            pos = text.find(bucket, pos + 1);
        }
    }
}

// `path` and, when it is or passes through a symlink, where it leads: Nix
// names files by their real path ("at /srv/real/pkgs/default.nix:3").
void add_path(std::vector<std::pair<std::string, std::string>>& out,
              const std::filesystem::path& path, const std::string& placeholder) {
    add(out, path.string(), placeholder);
    std::error_code ec;
    const auto real = std::filesystem::weakly_canonical(path, ec);
    if (!ec && !path.empty() && real != path) {
        add(out, real.string(), placeholder);
    }
}

} // namespace

Disclosure::Disclosure(const Config& config) {
    add_path(m_private, config.state_dir, "<state directory>");
    add_path(m_private, config.storage_path, "<storage>");
    add_path(m_private, config.data.nix_dir, "<nixery>");
    add_path(m_private, config.data.sql_dir, "<nixery>");
    add_path(m_private, config.data.nginx_dir, "<nixery>");
    add_path(m_private, config.nixpkgs_config, "<nixpkgs config>");
    if (config.source == SourceKind::path) {
        add_path(m_private, config.source_location, "<package set>");
        // Where a package set imports nixpkgs or overlays from beside it
        // ("import ../nixpkgs"): Nix's positions name those files too.
        const auto parent = std::filesystem::path(config.source_location).parent_path();
        if (parent.has_relative_path()) {
            add_path(m_private, parent, "<package set>/..");
        }
    }
    add_path(m_private, config.home_dir, "<home>");
    add_path(m_private, config.cache_home, "<cache>");
    if (config.source == SourceKind::git && config.git_source_is_local()) {
        add(m_private, config.source_location, "<git repository>");
    }
    for (const auto* bucket : {&config.gcs.bucket, &config.s3.bucket}) {
        if (!bucket->empty()) {
            m_buckets.push_back(*bucket);
        }
    }
    add(m_private, config.s3.access_key_id, "<redacted>");
    add(m_private, config.s3.secret_access_key, "<redacted>");
    add(m_private, config.s3.session_token, "<redacted>");
    add_path(m_private, config.gcs.credentials, "<credentials>");
    // The longest first, so a path inside another is not cut in two.
    std::sort(m_private.begin(), m_private.end(),
              [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

std::string Disclosure::scrub(std::string_view text) const {
    auto out = log::strip_userinfo(text);
    for (const auto& [secret, placeholder] : m_private) {
        replace_private(out, secret, placeholder);
    }
    for (const auto& bucket : m_buckets) {
        replace_bucket(out, bucket);
    }
    return out;
}

RegistryError Disclosure::for_client(RegistryError error, std::string_view request_id) const {
    error.message = scrub(error.message);
    error.detail = scrub(error.detail);
    if (error.status >= 500 && !request_id.empty()) {
        error.message +=
            " (request id " + std::string(request_id) + "; the server's log has the details)";
        if (error.detail.empty()) {
            error.detail = R"({"requestId":)" + json_string(request_id) + "}";
        }
    }
    return error;
}

} // namespace nixery
