#include "core/closure_graph.hpp"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <set>

namespace nixery {

std::string_view store_path_name(std::string_view path) {
    const auto slash = path.rfind('/');
    auto base = slash == std::string_view::npos ? path : path.substr(slash + 1);
    // Nix store hashes are 32 characters of base-32 followed by '-'.
    if (base.size() > 33 && base[32] == '-') {
        return base.substr(33);
    }
    return base;
}

Result<ClosureGraph> parse_references_graph(std::string_view json) {
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
    if (doc.HasParseError()) {
        return fail(std::string("parse references graph failed: ") +
                    rapidjson::GetParseError_En(doc.GetParseError()) + " at offset " +
                    std::to_string(doc.GetErrorOffset()));
    }
    if (!doc.IsObject() || !doc.HasMember("graph") || !doc["graph"].IsArray()) {
        return fail("parse references graph failed: no \"graph\" array");
    }
    ClosureGraph graph;
    std::set<std::string> listed;
    for (const auto& node : doc["graph"].GetArray()) {
        if (!node.IsObject() || !node.HasMember("path") || !node["path"].IsString()) {
            return fail("parse references graph failed: an entry has no \"path\"");
        }
        StorePathInfo info;
        info.path = node["path"].GetString();
        // Layering gives each store path one node: a second entry would put
        // the path into two layers (found by tests/fuzz).
        if (!listed.insert(info.path).second) {
            return fail("parse references graph failed: \"" + info.path + "\" is listed twice");
        }
        if (node.HasMember("narSize")) {
            if (!node["narSize"].IsUint64()) {
                return fail("parse references graph failed: \"narSize\" of \"" + info.path +
                            "\" is not a non-negative integer");
            }
            info.nar_size = node["narSize"].GetUint64();
        }
        if (node.HasMember("references")) {
            if (!node["references"].IsArray()) {
                return fail("parse references graph failed: \"references\" of \"" + info.path +
                            "\" is not an array");
            }
            for (const auto& ref : node["references"].GetArray()) {
                if (!ref.IsString()) {
                    return fail("parse references graph failed: a reference of \"" + info.path +
                                "\" is not a string");
                }
                info.references.emplace_back(ref.GetString());
            }
        }
        graph.paths.push_back(std::move(info));
    }

    const auto erg = doc.FindMember("exportReferencesGraph");
    if (erg != doc.MemberEnd() && erg->value.IsObject() && erg->value.HasMember("graph") &&
        erg->value["graph"].IsArray()) {
        for (const auto& root : erg->value["graph"].GetArray()) {
            if (!root.IsString()) {
                return fail("parse references graph failed: a root is not a string");
            }
            graph.roots.emplace_back(root.GetString());
        }
    } else {
        std::set<std::string_view> referenced;
        for (const auto& p : graph.paths) {
            for (const auto& r : p.references) {
                if (r != p.path) {
                    referenced.insert(r);
                }
            }
        }
        for (const auto& p : graph.paths) {
            if (referenced.count(p.path) == 0) {
                graph.roots.push_back(p.path);
            }
        }
    }
    return graph;
}

} // namespace nixery
