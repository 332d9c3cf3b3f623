#include "core/manifest.hpp"

#include "core/closure_graph.hpp"
#include "core/platform.hpp"
#include "util/text.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace nixery {

namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

// Any OCI image media type (manifest or index) counts as asking for OCI.
constexpr std::string_view k_oci_prefix = "application/vnd.oci.image.";
// The Docker engine's registry client (docker/distribution before v3) lists
// this among its manifest types, and lists them in a random order (a Go map's).
constexpr std::string_view k_docker_engine_schema1 = "application/json";

void put(Writer& w, std::string_view s) {
    w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

// {"key":"value",…} as member `name`, left out when there are none.
void put_object(Writer& w, const char* name, const Labels& members) {
    if (members.empty()) {
        return;
    }
    w.Key(name);
    w.StartObject();
    for (const auto& [key, value] : members) {
        put(w, key);
        put(w, value);
    }
    w.EndObject();
}

bool ieq(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
        if (lower(a[i]) != lower(b[i])) {
            return false;
        }
    }
    return true;
}

// "type; q=0" ranges are explicit refusals.
bool refused(std::string_view params) {
    std::size_t pos = 0;
    while (pos < params.size()) {
        const auto semi = params.find(';', pos);
        auto p = trim_blanks(params.substr(pos, semi - pos));
        if (p.size() >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
            const auto value = trim_blanks(p.substr(2));
            return !value.empty() && value.find_first_not_of("0.") == std::string_view::npos;
        }
        if (semi == std::string_view::npos) {
            break;
        }
        pos = semi + 1;
    }
    return false;
}

// Calls `f` with each media type the Accept headers list (every header,
// comma-separated ranges), except those refused with q=0, in order.
template <typename F> void for_each_accepted(const std::vector<std::string>& accept_headers, F f) {
    for (const auto& header : accept_headers) {
        std::string_view rest(header);
        while (!rest.empty()) {
            const auto comma = rest.find(',');
            const auto range = rest.substr(0, comma);
            rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
            const auto semi = range.find(';');
            if (semi == std::string_view::npos || !refused(range.substr(semi + 1))) {
                f(trim_blanks(range.substr(0, semi)));
            }
        }
    }
}

} // namespace

std::string_view to_string(LayerCompression compression) {
    return compression == LayerCompression::zstd ? "zstd" : "gzip";
}

std::string_view manifest_media_type(ManifestFormat format) {
    return format == ManifestFormat::oci ? media_type::oci_manifest : media_type::docker_manifest;
}

std::string_view config_media_type(ManifestFormat format) {
    return format == ManifestFormat::oci ? media_type::oci_config : media_type::docker_config;
}

std::string_view layer_media_type(ManifestFormat format, LayerCompression compression) {
    if (compression == LayerCompression::zstd) {
        return media_type::oci_layer_zstd;
    }
    return format == ManifestFormat::oci ? media_type::oci_layer : media_type::docker_layer;
}

ManifestFormat negotiate_format(const std::vector<std::string>& accept_headers,
                                LayerCompression compression) {
    bool docker = false;
    bool oci = false;
    bool oci_first = false;
    bool unordered = false;
    for_each_accepted(accept_headers, [&](std::string_view type) {
        if (ieq(type, media_type::docker_manifest)) {
            docker = true;
        } else if (ieq(type.substr(0, k_oci_prefix.size()), k_oci_prefix)) {
            oci_first = oci_first || !docker;
            oci = true;
        } else if (ieq(type, k_docker_engine_schema1)) {
            unordered = true;
        }
    });
    if (compression == LayerCompression::zstd && oci_first && !unordered) {
        return ManifestFormat::oci;
    }
    return oci && !docker ? ManifestFormat::oci : ManifestFormat::docker;
}

ManifestChoice negotiate_manifest(const std::vector<std::string>& accept_headers,
                                  LayerCompression compression) {
    ManifestChoice choice{negotiate_format(accept_headers, compression), std::nullopt};
    bool list = false;
    bool index = false;
    for_each_accepted(accept_headers, [&](std::string_view type) {
        list = list || ieq(type, media_type::docker_manifest_list);
        index = index || ieq(type, media_type::oci_index);
    });
    const bool oci = choice.format == ManifestFormat::oci;
    if ((oci && index) || (!oci && list)) {
        choice.index = choice.format;
    } else if (index || list) {
        choice.index = index ? ManifestFormat::oci : ManifestFormat::docker;
    }
    return choice;
}

std::string_view index_media_type(ManifestFormat format) {
    return format == ManifestFormat::oci ? media_type::oci_index : media_type::docker_manifest_list;
}

bool is_manifest_media_type(std::string_view type) {
    return type == media_type::docker_manifest || type == media_type::oci_manifest ||
           type == media_type::docker_manifest_list || type == media_type::oci_index;
}

std::string index_json(ManifestFormat format, const std::vector<IndexEntry>& entries,
                       const Labels& annotations) {
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    w.Key("schemaVersion");
    w.Int(2);
    w.Key("mediaType");
    put(w, index_media_type(format));
    w.Key("manifests");
    w.StartArray();
    for (const auto& e : entries) {
        w.StartObject();
        w.Key("mediaType");
        put(w, manifest_media_type(format));
        w.Key("size");
        w.Uint64(e.size);
        w.Key("digest");
        put(w, e.digest);
        w.Key("platform");
        w.StartObject();
        w.Key("architecture");
        put(w, oci_architecture(e.arch));
        w.Key("os");
        put(w, k_platform_os);
        if (!oci_variant(e.arch).empty()) {
            w.Key("variant");
            put(w, oci_variant(e.arch));
        }
        w.EndObject();
        w.EndObject();
    }
    w.EndArray();
    if (format == ManifestFormat::oci) {
        put_object(w, "annotations", annotations);
    }
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize());
}

Labels manifest_annotations_of(std::string_view json) {
    rapidjson::Document d;
    d.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
    Labels out;
    if (d.HasParseError() || !d.IsObject()) {
        return out;
    }
    const auto it = d.FindMember("annotations");
    if (it == d.MemberEnd() || !it->value.IsObject()) {
        return out;
    }
    for (const auto& m : it->value.GetObject()) {
        if (m.value.IsString()) {
            out.emplace_back(std::string(m.name.GetString(), m.name.GetStringLength()),
                             std::string(m.value.GetString(), m.value.GetStringLength()));
        }
    }
    return out;
}

std::string config_json(const ImageConfig& config) {
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    w.Key("architecture");
    put(w, oci_architecture(config.arch));
    if (!oci_variant(config.arch).empty()) {
        w.Key("variant");
        put(w, oci_variant(config.arch));
    }
    w.Key("os");
    put(w, k_platform_os);
    w.Key("created");
    put(w, k_fixed_created);
    w.Key("config");
    w.StartObject();
    w.Key("Env");
    w.StartArray();
    w.String("PATH=/bin:/usr/bin:/sbin:/usr/sbin");
    w.String("SSL_CERT_FILE=/etc/ssl/certs/ca-bundle.crt");
    w.EndArray();
    if (config.bash) {
        w.Key("Cmd");
        w.StartArray();
        w.String("bash");
        w.EndArray();
    }
    put_object(w, "Labels", config.labels);
    w.EndObject();
    w.Key("rootfs");
    w.StartObject();
    w.Key("type");
    w.String("layers");
    w.Key("diff_ids");
    w.StartArray();
    for (const auto& l : config.layers) {
        put(w, l.diff_id);
    }
    w.EndArray();
    w.EndObject();
    w.Key("history");
    w.StartArray();
    for (const auto& l : config.layers) {
        w.StartObject();
        w.Key("created");
        put(w, k_fixed_created);
        w.Key("created_by");
        put(w, l.created_by);
        w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize());
}

std::string manifest_json(ManifestFormat format, std::string_view config_digest,
                          std::uint64_t config_size, const std::vector<LayerDescriptor>& layers,
                          const Labels& annotations) {
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    w.Key("schemaVersion");
    w.Int(2);
    w.Key("mediaType");
    put(w, manifest_media_type(format));
    w.Key("config");
    w.StartObject();
    w.Key("mediaType");
    put(w, config_media_type(format));
    w.Key("size");
    w.Uint64(config_size);
    w.Key("digest");
    put(w, config_digest);
    w.EndObject();
    w.Key("layers");
    w.StartArray();
    for (const auto& l : layers) {
        w.StartObject();
        w.Key("mediaType");
        put(w, layer_media_type(format, l.compression));
        w.Key("size");
        w.Uint64(l.size);
        w.Key("digest");
        put(w, l.digest);
        w.EndObject();
    }
    w.EndArray();
    if (format == ManifestFormat::oci) {
        put_object(w, "annotations", annotations);
    }
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize());
}

std::string describe_layer(const std::vector<std::string>& store_paths, std::size_t limit) {
    std::string out = "nixery:";
    std::size_t named = 0;
    for (const auto& p : store_paths) {
        if (named == limit) {
            out += " and " + std::to_string(store_paths.size() - named) + " more";
            break;
        }
        out += named == 0 ? " " : ", ";
        out += store_path_name(p);
        ++named;
    }
    return out;
}

std::string document_media_type(std::string_view json) {
    rapidjson::Document d;
    d.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
    if (d.HasParseError() || !d.IsObject()) {
        return {};
    }
    const auto it = d.FindMember("mediaType");
    if (it == d.MemberEnd()) {
        const auto rootfs = d.FindMember("rootfs");
        return rootfs != d.MemberEnd() && rootfs->value.IsObject()
                   ? std::string(media_type::docker_config)
                   : std::string();
    }
    if (!it->value.IsString()) {
        return {};
    }
    return std::string(it->value.GetString(), it->value.GetStringLength());
}

std::size_t manifest_layer_count(std::string_view json) {
    rapidjson::Document d;
    d.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
    if (d.HasParseError() || !d.IsObject()) {
        return 0;
    }
    const auto it = d.FindMember("layers");
    return it != d.MemberEnd() && it->value.IsArray() ? it->value.Size() : 0;
}

} // namespace nixery
