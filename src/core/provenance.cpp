#include "core/provenance.hpp"

#include "core/manifest.hpp"
#include "util/sha256.hpp"
#include "util/text.hpp"

#include <algorithm>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace nixery {

namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void put(Writer& w, std::string_view s) {
    w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

std::string packages_json(const ImageProvenance& image) {
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    for (const auto& [name, out_path] : image.packages) {
        put(w, name);
        put(w, out_path);
    }
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize());
}

void add(Labels& labels, std::string_view key, std::string value) {
    if (!value.empty()) {
        labels.emplace_back(std::string(key), std::move(value));
    }
}

void sort(Labels& labels) {
    std::sort(labels.begin(), labels.end());
}

} // namespace

std::string canonical_image_name(const Image& image) {
    std::string out = image.arch == Arch::arm64 ? "arm64" : "";
    const auto& shell = shell_packages();
    const auto has = [&](const std::string& p) {
        return std::binary_search(image.packages.begin(), image.packages.end(), p);
    };
    const bool is_shell = std::all_of(shell.begin(), shell.end(), has);
    if (is_shell) {
        out += out.empty() ? "shell" : "/shell";
    }
    for (const auto& p : image.packages) {
        if (is_shell && std::find(shell.begin(), shell.end(), p) != shell.end()) {
            continue;
        }
        out += (out.empty() ? "" : "/") + p;
    }
    return out;
}

Labels manifest_annotations(const ImageProvenance& image) {
    const auto& s = image.source;
    // No server path: every puller sees the labels (the content hash or
    // revision still says what the source is).
    const auto location = is_local_location(s.location) ? "" : s.location;
    Labels labels;
    add(labels, label::created, std::string(k_fixed_created));
    add(labels, label::title, image.name);
    if (s.type == "git" || s.type == "channel") {
        add(labels, label::source, location);
        add(labels, label::revision, s.revision);
    }
    add(labels, label::packages, packages_json(image));
    add(labels, label::source_type, s.type);
    add(labels, label::source_location, location);
    add(labels, label::source_channel, s.channel);
    add(labels, label::source_revision, s.revision);
    add(labels, label::source_hash, s.hash);
    sort(labels);
    return labels;
}

Labels index_annotations(const std::vector<Labels>& platforms, std::string_view title) {
    Labels out;
    if (!platforms.empty()) {
        for (const auto& entry : platforms.front()) {
            const bool shared =
                std::all_of(platforms.begin(), platforms.end(), [&](const Labels& l) {
                    return std::find(l.begin(), l.end(), entry) != l.end();
                });
            if (shared && entry.first != label::title) {
                out.push_back(entry);
            }
        }
    }
    add(out, label::title, std::string(title));
    sort(out);
    return out;
}

Labels config_labels(const ImageProvenance& image,
                     const std::vector<std::vector<std::string>>& layer_store_paths) {
    auto labels = manifest_annotations(image);
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartArray();
    for (const auto& layer : layer_store_paths) {
        w.StartArray();
        for (const auto& path : layer) {
            const auto slash = path.rfind('/');
            put(w, slash == std::string::npos ? std::string_view(path)
                                              : std::string_view(path).substr(slash + 1));
        }
        w.EndArray();
    }
    w.EndArray();
    labels.emplace_back(std::string(label::layers), std::string(buf.GetString(), buf.GetSize()));
    sort(labels);
    return labels;
}

std::string provenance_digest(const ImageProvenance& image) {
    Sha256 h;
    for (const auto& [key, value] : manifest_annotations(image)) {
        h.update(key);
        h.update(std::string_view("\0", 1));
        h.update(value);
        h.update(std::string_view("\0", 1));
    }
    return h.finish_hex();
}

bool is_local_location(std::string_view location) {
    const auto scheme = location.find("://");
    if (scheme != std::string_view::npos) {
        return ascii_lowercase(location.substr(0, scheme)) == "file";
    }
    const auto colon = location.find(':');
    return colon == std::string_view::npos || location.find('/') < colon;
}

std::string url_without_credentials(std::string_view url) {
    // A local path or an scp-like git address ("git@host:repo", an SSH
    // user, no secret) has neither user info nor query.
    const auto scheme = url.find("://");
    if (scheme == std::string_view::npos) {
        return std::string(url);
    }
    url = url.substr(0, url.find_first_of("?#"));
    const auto authority = scheme + 3;
    const auto path = url.find('/', authority);
    const auto at = url.substr(0, path).rfind('@');
    if (at == std::string_view::npos || at < authority) {
        return std::string(url);
    }
    return std::string(url.substr(0, authority)) + std::string(url.substr(at + 1));
}

std::string provenance_json(const SourceProvenance& source) {
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    const std::pair<const char*, const std::string*> members[] = {
        {"type", &source.type},       {"location", &source.location},
        {"channel", &source.channel}, {"revision", &source.revision},
        {"hash", &source.hash},
    };
    for (const auto& [key, value] : members) {
        w.Key(key);
        put(w, *value);
    }
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize());
}

SourceProvenance parse_provenance_json(std::string_view json) {
    rapidjson::Document d;
    d.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
    SourceProvenance out;
    if (d.HasParseError() || !d.IsObject()) {
        return out;
    }
    const auto get = [&](const char* key) {
        const auto it = d.FindMember(key);
        return it != d.MemberEnd() && it->value.IsString()
                   ? std::string(it->value.GetString(), it->value.GetStringLength())
                   : std::string();
    };
    out.type = get("type");
    out.location = get("location");
    out.channel = get("channel");
    out.revision = get("revision");
    out.hash = get("hash");
    return out;
}

} // namespace nixery
