#include "core/image_layout.hpp"

#include "core/manifest.hpp"
#include "core/reference.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace nixery {

namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;
using Value = rapidjson::Value;

void put(Writer& w, std::string_view s) {
    w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

std::string_view string_member(const Value& object, const char* name) {
    const auto it = object.FindMember(name);
    if (it == object.MemberEnd() || !it->value.IsString()) {
        return {};
    }
    return {it->value.GetString(), it->value.GetStringLength()};
}

Result<Descriptor> read_descriptor(const Value& v, std::string_view where) {
    if (!v.IsObject()) {
        return fail(std::string(where) + " is not an object");
    }
    Descriptor d;
    d.media_type = string_member(v, "mediaType");
    d.digest = string_member(v, "digest");
    if (check_digest(d.digest) != DigestCheck::ok) {
        return fail(std::string(where) + " has no sha256 digest");
    }
    const auto size = v.FindMember("size");
    if (size == v.MemberEnd() || !size->value.IsUint64()) {
        return fail(std::string(where) + " has no size");
    }
    d.size = size->value.GetUint64();
    const auto platform = v.FindMember("platform");
    if (platform != v.MemberEnd() && platform->value.IsObject()) {
        d.os = string_member(platform->value, "os");
        d.architecture = string_member(platform->value, "architecture");
        d.variant = string_member(platform->value, "variant");
    }
    return d;
}

Result<std::vector<Descriptor>> read_descriptors(const Value& doc, const char* member) {
    const auto it = doc.FindMember(member);
    if (it == doc.MemberEnd() || !it->value.IsArray()) {
        return fail(std::string("\"") + member + "\" is missing");
    }
    std::vector<Descriptor> out;
    for (rapidjson::SizeType i = 0; i < it->value.Size(); ++i) {
        TRY_ASSIGN(auto d, read_descriptor(it->value[i], std::string("\"") + member + "\" entry " +
                                                             std::to_string(i)));
        out.push_back(std::move(d));
    }
    return out;
}

void write_descriptor(Writer& w, const Descriptor& d) {
    w.Key("mediaType");
    put(w, d.media_type);
    w.Key("digest");
    put(w, d.digest);
    w.Key("size");
    w.Uint64(d.size);
}

} // namespace

bool is_index_media_type(std::string_view type) {
    return type == media_type::oci_index || type == media_type::docker_manifest_list;
}

Result<ImageDocument> parse_image_document(std::string_view json) {
    rapidjson::Document d;
    d.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
    if (d.HasParseError() || !d.IsObject()) {
        return fail("the document is not a JSON object");
    }
    const auto type = string_member(d, "mediaType");
    ImageDocument doc;
    if (is_index_media_type(type) || (type.empty() && d.HasMember("manifests"))) {
        doc.kind = DocumentKind::index;
        TRY_ASSIGN(doc.entries, read_descriptors(d, "manifests"));
        return doc;
    }
    if (!type.empty() && type != media_type::docker_manifest && type != media_type::oci_manifest) {
        return fail("the document's media type \"" + std::string(type) +
                    "\" is neither a manifest nor an index");
    }
    const auto config = d.FindMember("config");
    if (config == d.MemberEnd()) {
        return fail("the manifest has no config");
    }
    TRY_ASSIGN(doc.config, read_descriptor(config->value, "\"config\""));
    TRY_ASSIGN(doc.layers, read_descriptors(d, "layers"));
    return doc;
}

std::string layout_blob_path(std::string_view digest) {
    const auto colon = digest.find(':');
    return "blobs/" + std::string(digest.substr(0, colon)) + "/" +
           std::string(digest.substr(colon + 1));
}

std::string oci_layout_json() {
    return R"({"imageLayoutVersion":"1.0.0"})";
}

namespace {

// Whether `v` nests at most `limit` arrays and objects deep, found without
// recursion: writing a value back out (Accept) recurses once per level.
bool nests_at_most(const rapidjson::Value& v, std::size_t limit) {
    std::vector<std::pair<const rapidjson::Value*, std::size_t>> todo{{&v, 1}};
    while (!todo.empty()) {
        const auto [value, depth] = todo.back();
        todo.pop_back();
        if (!value->IsArray() && !value->IsObject()) {
            continue;
        }
        if (depth > limit) {
            return false;
        }
        if (value->IsArray()) {
            for (const auto& item : value->GetArray()) {
                todo.emplace_back(&item, depth + 1);
            }
        } else {
            for (const auto& member : value->GetObject()) {
                todo.emplace_back(&member.value, depth + 1);
            }
        }
    }
    return true;
}

} // namespace

Result<std::string> layout_index_json(const Descriptor& root, std::string_view ref_name,
                                      std::string_view existing) {
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    w.Key("schemaVersion");
    w.Int(2);
    w.Key("mediaType");
    put(w, media_type::oci_index);
    w.Key("manifests");
    w.StartArray();
    if (!existing.empty()) {
        rapidjson::Document d;
        d.Parse<rapidjson::kParseIterativeFlag>(existing.data(), existing.size());
        if (d.HasParseError() || !d.IsObject() || !d.HasMember("manifests") ||
            !d["manifests"].IsArray()) {
            return fail("the layout's index.json is not an image index");
        }
        for (const auto& entry : d["manifests"].GetArray()) {
            if (!entry.IsObject()) {
                return fail("the layout's index.json has an entry that is not an object");
            }
            if (!nests_at_most(entry, 64)) {
                return fail("the layout's index.json has an entry nested over 64 levels deep");
            }
            const auto annotations = entry.FindMember("annotations");
            if (annotations != entry.MemberEnd() && annotations->value.IsObject() &&
                string_member(annotations->value, k_ref_name_annotation.data()) == ref_name) {
                continue; // replaced by root
            }
            entry.Accept(w); // kept as it is, whatever members it has
        }
    }
    w.StartObject();
    write_descriptor(w, root);
    w.Key("annotations");
    w.StartObject();
    put(w, k_ref_name_annotation);
    put(w, ref_name);
    w.EndObject();
    w.EndObject();
    w.EndArray();
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize());
}

std::string docker_archive_manifest_json(const Descriptor& config,
                                         const std::vector<Descriptor>& layers,
                                         std::string_view repo_tag) {
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartArray();
    w.StartObject();
    w.Key("Config");
    put(w, layout_blob_path(config.digest));
    w.Key("RepoTags");
    w.StartArray();
    put(w, repo_tag);
    w.EndArray();
    w.Key("Layers");
    w.StartArray();
    for (const auto& l : layers) {
        put(w, layout_blob_path(l.digest));
    }
    w.EndArray();
    w.EndObject();
    w.EndArray();
    return std::string(buf.GetString(), buf.GetSize());
}

std::optional<Descriptor> platform_entry(const ImageDocument& index,
                                         std::string_view architecture) {
    for (const auto& e : index.entries) {
        if (e.os == "linux" && e.architecture == architecture) {
            return e;
        }
    }
    return std::nullopt;
}

} // namespace nixery
