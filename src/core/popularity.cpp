#include "core/popularity.hpp"

#include "core/closure_graph.hpp"
#include "core/layers.hpp"
#include "util/sha256.hpp"

#include <algorithm>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

namespace nixery {

namespace {

bool starts_with(std::string_view s, std::string_view prefix) {
    return s.substr(0, prefix.size()) == prefix;
}

bool in_every_image(std::string_view name) {
    return name == "cacert" || name == "iana-etc" || starts_with(name, "cacert-") ||
           starts_with(name, "nss-cacert-") || starts_with(name, "iana-etc-");
}

bool is_letter(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

} // namespace

std::string versionless_name(std::string_view name) {
    std::size_t dash = 0;
    while ((dash = name.find('-', dash)) != std::string_view::npos) {
        if (dash + 1 < name.size() && !is_letter(name[dash + 1])) {
            break;
        }
        ++dash;
    }
    if (dash == std::string_view::npos) {
        return std::string(name);
    }
    std::string out(name.substr(0, dash));
    const auto version = name.substr(dash + 1);
    const auto last = version.rfind('-');
    if (last != std::string_view::npos) {
        const auto suffix = version.substr(last + 1);
        if (!suffix.empty() && std::all_of(suffix.begin(), suffix.end(), is_letter)) {
            out += '-';
            out += suffix;
        }
    }
    return out;
}

Result<Popularity> Popularity::parse(std::string_view json) {
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
    if (doc.HasParseError()) {
        return fail(std::string("parse popularity data failed: ") +
                    rapidjson::GetParseError_En(doc.GetParseError()) + " at offset " +
                    std::to_string(doc.GetErrorOffset()));
    }
    if (!doc.IsObject()) {
        return fail("parse popularity data failed: not a JSON object");
    }
    // Counts are clamped: no package set has more packages than this, and
    // a huge count (1e30 in a hand-edited file) would overflow the integer
    // it is converted to (found by tests/fuzz) and the merge ratings.
    constexpr std::uint64_t k_max_count = std::uint64_t{1} << 32;
    Popularity p;
    for (const auto& m : doc.GetObject()) {
        std::uint64_t count = 0;
        if (m.value.IsUint64()) {
            count = std::min(m.value.GetUint64(), k_max_count);
        } else if (m.value.IsNumber() && m.value.GetDouble() >= 0) {
            count = m.value.GetDouble() >= static_cast<double>(k_max_count)
                        ? k_max_count
                        : static_cast<std::uint64_t>(m.value.GetDouble());
        } else {
            return fail(std::string("parse popularity data failed: count of \"") +
                        m.name.GetString() + "\" is not a non-negative number");
        }
        p.m_counts[m.name.GetString()] = count;
        auto& versionless = p.m_versionless[versionless_name(m.name.GetString())];
        versionless = std::max(versionless, count);
        p.m_max = std::max(p.m_max, count);
    }
    p.m_digest = sha256_hex(json);
    return p;
}

std::uint64_t Popularity::of_store_path(std::string_view path) const {
    const auto name = store_path_name(path);
    if (in_every_image(name)) {
        return std::max(m_max + 1, k_popular_threshold);
    }
    if (const auto it = m_counts.find(std::string(name)); it != m_counts.end()) {
        return it->second;
    }
    const auto it = m_versionless.find(versionless_name(name));
    return it == m_versionless.end() ? 1 : it->second;
}

} // namespace nixery
