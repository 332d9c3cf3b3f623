// Popularity counts for a package set: for each store path name
// ("glibc-2.40-66"), how many packages have it in their runtime closure,
// not counting the package itself. This is the data NIX_POPULARITY_URL
// feeds to layering (see popularity.hpp), and what `nixery popcount`
// computes, from a closure Nix reports or from a binary cache's narinfo
// files. Pure: no I/O.
#pragma once

#include "core/closure_graph.hpp"
#include "util/result.hpp"

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace nixery {

// `packages` are store paths of the graph (the package set's outputs);
// a package counts each name in its closure once.
std::map<std::string, std::uint64_t> count_popularity(const ClosureGraph& graph,
                                                      const std::vector<std::string>& packages);

// {"name": count, …} with names sorted.
std::string popularity_json(const std::map<std::string, std::uint64_t>& counts);

// A reference graph of store paths by base name ("<hash>-<name>"), compact
// enough for a whole channel (a few hundred thousand paths): ids, not
// strings, in the edges. Paths are added as they are learnt; a path whose
// references are not (yet) known is a leaf.
class StorePathGraph {
public:
    // The id of the base name, adding it when new.
    std::uint32_t intern(std::string_view base_name);
    std::optional<std::uint32_t> find(std::string_view base_name) const;
    void set_references(std::uint32_t id, std::vector<std::uint32_t> references);
    const std::string& base_name(std::uint32_t id) const { return m_base[id]; }
    std::size_t size() const { return m_base.size(); }

    // count_popularity over this graph; O(sum of the packages' closures)
    // time, O(paths) memory beyond the result.
    std::map<std::string, std::uint64_t> count(const std::vector<std::uint32_t>& packages) const;

private:
    // Deques: the maps' keys view into them, so they must not move.
    std::deque<std::string> m_base;
    std::vector<std::uint32_t> m_name; // id → name id (the base name without its hash)
    std::deque<std::string> m_names;
    std::unordered_map<std::string_view, std::uint32_t> m_name_ids;
    std::unordered_map<std::string_view, std::uint32_t> m_ids;
    std::vector<std::vector<std::uint32_t>> m_references;
};

// "/nix/store/<hash>-<name>" or "<hash>-<name>" → "<hash>-<name>", when the
// hash is 32 characters of Nix's base-32 and the name uses only the
// characters Nix allows; nullopt otherwise (the base name goes into URLs).
std::optional<std::string_view> store_base_name(std::string_view path);
// "<hash>-<name>" → "<hash>"
std::string_view store_hash(std::string_view base_name);

// What popcount reads from a .narinfo file: the NAR size and references
// (base names; the path itself may be among them). Fails on a body that is
// not a narinfo or has an invalid reference.
struct NarInfo {
    std::uint64_t nar_size = 0;
    std::vector<std::string> references;
};
Result<NarInfo> parse_narinfo(std::string_view text);

// The journal `nixery popcount` keeps of the narinfo files it has read, one
// line each, so that an interrupted run resumes where it stopped:
//   "<base name> <nar size> <reference>…\n", or "<base name> -\n" when the
// cache has no narinfo for the path.
std::string journal_line(std::string_view base_name, const std::optional<NarInfo>& info);
struct JournalEntry {
    std::string base_name;
    std::optional<NarInfo> info; // nullopt: not in the cache
};
// nullopt for a line that is not one journal_line wrote (a torn last line).
std::optional<JournalEntry> parse_journal_line(std::string_view line);

} // namespace nixery
