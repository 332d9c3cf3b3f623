#include "core/popcount.hpp"

#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <set>
#include <unordered_map>

namespace nixery {

std::map<std::string, std::uint64_t> count_popularity(const ClosureGraph& graph,
                                                      const std::vector<std::string>& packages) {
    std::unordered_map<std::string_view, const StorePathInfo*> by_path;
    for (const auto& p : graph.paths) {
        by_path.emplace(p.path, &p);
    }
    std::map<std::string, std::uint64_t> counts;
    std::set<std::string_view> counted_packages;
    for (const auto& package : packages) {
        if (by_path.count(package) == 0 || !counted_packages.insert(package).second) {
            continue; // not realised, or the same output under another attribute name
        }
        std::set<std::string_view> seen{package};
        std::set<std::string_view> names;
        std::vector<std::string_view> stack{package};
        while (!stack.empty()) {
            const auto* info = by_path.at(stack.back());
            stack.pop_back();
            for (const auto& ref : info->references) {
                if (by_path.count(ref) != 0 && seen.insert(ref).second) {
                    stack.push_back(ref);
                    names.insert(store_path_name(ref));
                }
            }
        }
        names.erase(store_path_name(package)); // another version of itself is not a dependent
        for (const auto name : names) {
            ++counts[std::string(name)];
        }
    }
    return counts;
}

std::string popularity_json(const std::map<std::string, std::uint64_t>& counts) {
    rapidjson::StringBuffer buf;
    rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buf);
    w.SetIndent(' ', 2);
    w.StartObject();
    for (const auto& [name, count] : counts) {
        w.Key(name.c_str(), static_cast<rapidjson::SizeType>(name.size()));
        w.Uint64(count);
    }
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize());
}

} // namespace nixery
