#include "core/popcount.hpp"

#include <algorithm>
#include <charconv>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

namespace nixery {

namespace {

constexpr std::string_view k_store_dir = "/nix/store/";
constexpr std::string_view k_base32 = "0123456789abcdfghijklmnpqrsvwxyz";

bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '-' || c == '.' || c == '_' || c == '?' || c == '=';
}

std::vector<std::string_view> split_spaces(std::string_view s) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && s[i] == ' ') {
            ++i;
        }
        const auto start = i;
        while (i < s.size() && s[i] != ' ') {
            ++i;
        }
        if (i > start) {
            out.push_back(s.substr(start, i - start));
        }
    }
    return out;
}

std::optional<std::uint64_t> parse_u64(std::string_view s) {
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || s.empty()) {
        return std::nullopt;
    }
    return v;
}

} // namespace

std::optional<std::string_view> store_base_name(std::string_view path) {
    if (path.substr(0, k_store_dir.size()) == k_store_dir) {
        path.remove_prefix(k_store_dir.size());
    }
    if (path.size() < 34 || path.size() > 211 || path[32] != '-') {
        return std::nullopt;
    }
    for (std::size_t i = 0; i < 32; ++i) {
        if (k_base32.find(path[i]) == std::string_view::npos) {
            return std::nullopt;
        }
    }
    if (path[33] == '.' || !std::all_of(path.begin() + 33, path.end(), is_name_char)) {
        return std::nullopt;
    }
    return path;
}

std::string_view store_hash(std::string_view base_name) {
    return base_name.substr(0, 32);
}

std::uint32_t StorePathGraph::intern(std::string_view base_name) {
    if (const auto it = m_ids.find(base_name); it != m_ids.end()) {
        return it->second;
    }
    const auto id = static_cast<std::uint32_t>(m_base.size());
    const auto& stored = m_base.emplace_back(base_name);
    m_ids.emplace(stored, id);
    m_references.emplace_back();
    const auto name = store_path_name(stored);
    auto name_it = m_name_ids.find(name);
    if (name_it == m_name_ids.end()) {
        const auto& n = m_names.emplace_back(name);
        name_it = m_name_ids.emplace(n, static_cast<std::uint32_t>(m_names.size() - 1)).first;
    }
    m_name.push_back(name_it->second);
    return id;
}

std::optional<std::uint32_t> StorePathGraph::find(std::string_view base_name) const {
    const auto it = m_ids.find(base_name);
    return it == m_ids.end() ? std::nullopt : std::optional<std::uint32_t>(it->second);
}

void StorePathGraph::set_references(std::uint32_t id, std::vector<std::uint32_t> references) {
    references.erase(std::remove(references.begin(), references.end(), id), references.end());
    m_references[id] = std::move(references);
}

std::map<std::string, std::uint64_t>
StorePathGraph::count(const std::vector<std::uint32_t>& packages) const {
    // Stamps instead of sets: a node (or name) is seen in this package's
    // closure when its stamp is the package's round.
    std::vector<std::uint32_t> node_round(m_base.size(), 0);
    std::vector<std::uint32_t> name_round(m_names.size(), 0);
    std::vector<std::uint64_t> counts(m_names.size(), 0);
    std::vector<std::uint32_t> package_round(m_base.size(), 0);
    std::vector<std::uint32_t> stack;
    std::uint32_t round = 0;
    for (const auto package : packages) {
        if (package >= m_base.size() || package_round[package] != 0) {
            continue; // the same output listed twice
        }
        ++round;
        package_round[package] = round;
        node_round[package] = round;
        name_round[m_name[package]] = round; // another version of itself is not a dependent
        stack.assign(1, package);
        while (!stack.empty()) {
            const auto v = stack.back();
            stack.pop_back();
            for (const auto r : m_references[v]) {
                if (node_round[r] == round) {
                    continue;
                }
                node_round[r] = round;
                stack.push_back(r);
                if (name_round[m_name[r]] != round) {
                    name_round[m_name[r]] = round;
                    ++counts[m_name[r]];
                }
            }
        }
    }
    std::map<std::string, std::uint64_t> out;
    for (std::size_t n = 0; n < counts.size(); ++n) {
        if (counts[n] > 0) {
            out.emplace(m_names[n], counts[n]);
        }
    }
    return out;
}

std::map<std::string, std::uint64_t> count_popularity(const ClosureGraph& graph,
                                                      const std::vector<std::string>& packages) {
    // Keyed by the whole path, which names the node as a base name does.
    StorePathGraph g;
    std::unordered_map<std::string_view, std::uint32_t> ids;
    for (const auto& p : graph.paths) {
        ids.emplace(p.path, g.intern(p.path));
    }
    for (const auto& p : graph.paths) {
        std::vector<std::uint32_t> refs;
        for (const auto& r : p.references) {
            if (const auto it = ids.find(r); it != ids.end()) {
                refs.push_back(it->second);
            }
        }
        g.set_references(ids.at(p.path), std::move(refs));
    }
    std::vector<std::uint32_t> roots;
    for (const auto& p : packages) {
        if (const auto it = ids.find(p); it != ids.end()) {
            roots.push_back(it->second);
        }
    }
    return g.count(roots);
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

Result<NarInfo> parse_narinfo(std::string_view text) {
    NarInfo info;
    bool has_store_path = false;
    bool has_size = false;
    std::size_t pos = 0;
    while (pos < text.size()) {
        auto end = text.find('\n', pos);
        if (end == std::string_view::npos) {
            end = text.size();
        }
        const auto line = text.substr(pos, end - pos);
        pos = end + 1;
        const auto colon = line.find(": ");
        if (colon == std::string_view::npos) {
            continue;
        }
        const auto key = line.substr(0, colon);
        const auto value = line.substr(colon + 2);
        if (key == "StorePath") {
            has_store_path = true;
        } else if (key == "NarSize") {
            const auto size = parse_u64(value);
            if (!size) {
                return fail("parse narinfo failed: NarSize \"" + std::string(value) +
                            "\" is not a number");
            }
            info.nar_size = *size;
            has_size = true;
        } else if (key == "References") {
            for (const auto ref : split_spaces(value)) {
                if (!store_base_name(ref)) {
                    return fail("parse narinfo failed: reference \"" +
                                std::string(ref.substr(0, 80)) + "\" is not a store path");
                }
                info.references.emplace_back(ref);
            }
        }
    }
    if (!has_store_path || !has_size) {
        return fail("parse narinfo failed: no StorePath or NarSize");
    }
    return info;
}

std::string journal_line(std::string_view base_name, const std::optional<NarInfo>& info) {
    std::string line(base_name);
    if (!info) {
        return line + " -\n";
    }
    line += ' ';
    line += std::to_string(info->nar_size);
    for (const auto& r : info->references) {
        line += ' ';
        line += r;
    }
    line += '\n';
    return line;
}

std::optional<JournalEntry> parse_journal_line(std::string_view line) {
    if (line.empty() || line.back() != '\n') {
        return std::nullopt;
    }
    line.remove_suffix(1);
    const auto words = split_spaces(line);
    if (words.size() < 2 || !store_base_name(words[0])) {
        return std::nullopt;
    }
    JournalEntry e;
    e.base_name = std::string(words[0]);
    if (words[1] == "-" && words.size() == 2) {
        return e;
    }
    const auto size = parse_u64(words[1]);
    if (!size) {
        return std::nullopt;
    }
    NarInfo info;
    info.nar_size = *size;
    for (std::size_t i = 2; i < words.size(); ++i) {
        if (!store_base_name(words[i])) {
            return std::nullopt;
        }
        info.references.emplace_back(words[i]);
    }
    e.info = std::move(info);
    return e;
}

} // namespace nixery
