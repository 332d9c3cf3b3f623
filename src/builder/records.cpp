#include "builder/records.hpp"

#include "core/reference.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace nixery {

namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void field(Writer& w, const char* key, const std::string& value) {
    w.Key(key);
    w.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
}

std::optional<std::string> string_field(const rapidjson::Value& v, const char* key) {
    if (!v.IsObject() || !v.HasMember(key) || !v[key].IsString()) {
        return std::nullopt;
    }
    return std::string(v[key].GetString(), v[key].GetStringLength());
}

bool is_digest(const std::optional<std::string>& s) {
    return s && check_digest(*s) == DigestCheck::ok;
}

} // namespace

constexpr std::string_view k_record_suffix = ".json";

std::string layer_record_key(std::string_view layer_key) {
    return std::string(k_layer_records) + std::string(layer_key) + std::string(k_record_suffix);
}

std::string image_record_key(std::string_view closure_key) {
    return std::string(k_image_records) + std::string(closure_key) + std::string(k_record_suffix);
}

std::string index_record_key(std::string_view index_digest) {
    const auto hex = index_digest.substr(index_digest.find(':') + 1);
    return std::string(k_index_records) + std::string(hex) + std::string(k_record_suffix);
}

std::string record_name(std::string_view object, std::string_view prefix) {
    if (object.size() <= prefix.size() + k_record_suffix.size() ||
        object.substr(0, prefix.size()) != prefix ||
        object.substr(object.size() - k_record_suffix.size()) != k_record_suffix) {
        return {};
    }
    return std::string(
        object.substr(prefix.size(), object.size() - prefix.size() - k_record_suffix.size()));
}

std::string encode_layer_record(const LayerRecord& layer) {
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    field(w, "digest", layer.digest);
    field(w, "diffId", layer.diff_id);
    w.Key("size");
    w.Uint64(layer.size);
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize());
}

std::optional<LayerRecord> decode_layer_record(std::string_view json) {
    rapidjson::Document d;
    d.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
    if (d.HasParseError()) {
        return std::nullopt;
    }
    const auto digest = string_field(d, "digest");
    const auto diff_id = string_field(d, "diffId");
    if (!is_digest(digest) || !is_digest(diff_id) || !d.HasMember("size") ||
        !d["size"].IsUint64()) {
        return std::nullopt;
    }
    return LayerRecord{*digest, *diff_id, d["size"].GetUint64()};
}

std::string encode_image_record(const ImageRecord& image) {
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    field(w, "config", image.config_digest);
    field(w, "dockerManifest", image.docker_manifest);
    field(w, "dockerDigest", image.docker_digest);
    field(w, "ociManifest", image.oci_manifest);
    field(w, "ociDigest", image.oci_digest);
    w.Key("blobs");
    w.StartArray();
    for (const auto& b : image.blobs) {
        w.String(b.c_str(), static_cast<rapidjson::SizeType>(b.size()));
    }
    w.EndArray();
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize());
}

std::optional<ImageRecord> decode_image_record(std::string_view json) {
    rapidjson::Document d;
    d.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
    if (d.HasParseError()) {
        return std::nullopt;
    }
    ImageRecord r;
    const auto config = string_field(d, "config");
    const auto docker = string_field(d, "dockerManifest");
    const auto docker_digest = string_field(d, "dockerDigest");
    const auto oci = string_field(d, "ociManifest");
    const auto oci_digest = string_field(d, "ociDigest");
    if (!is_digest(config) || !docker || !is_digest(docker_digest) || !oci ||
        !is_digest(oci_digest) || !d.HasMember("blobs") || !d["blobs"].IsArray()) {
        return std::nullopt;
    }
    r.config_digest = *config;
    r.docker_manifest = *docker;
    r.docker_digest = *docker_digest;
    r.oci_manifest = *oci;
    r.oci_digest = *oci_digest;
    for (const auto& b : d["blobs"].GetArray()) {
        if (!b.IsString() || check_digest(b.GetString()) != DigestCheck::ok) {
            return std::nullopt;
        }
        r.blobs.emplace_back(b.GetString());
    }
    return r;
}

std::string encode_index_record(const std::vector<std::string>& manifests) {
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    w.Key("manifests");
    w.StartArray();
    for (const auto& m : manifests) {
        w.String(m.c_str(), static_cast<rapidjson::SizeType>(m.size()));
    }
    w.EndArray();
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize());
}

std::optional<std::vector<std::string>> decode_index_record(std::string_view json) {
    rapidjson::Document d;
    d.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
    if (d.HasParseError() || !d.IsObject() || !d.HasMember("manifests") ||
        !d["manifests"].IsArray()) {
        return std::nullopt;
    }
    std::vector<std::string> out;
    for (const auto& m : d["manifests"].GetArray()) {
        if (!m.IsString() || check_digest(m.GetString()) != DigestCheck::ok) {
            return std::nullopt;
        }
        out.emplace_back(m.GetString());
    }
    return out;
}

} // namespace nixery
