#include "core/layers.hpp"

#include "core/dominators.hpp"

#include <algorithm>
#include <iterator>
#include <limits>
#include <optional>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <unordered_map>

namespace nixery {

namespace {

std::uint64_t saturating_mul(std::uint64_t a, std::uint64_t b) {
    if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a) {
        return std::numeric_limits<std::uint64_t>::max();
    }
    return a * b;
}

std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) {
    return b > std::numeric_limits<std::uint64_t>::max() - a
               ? std::numeric_limits<std::uint64_t>::max()
               : a + b;
}

// Node 0 is the image, with an edge to every root; store paths follow as
// nodes 1…n in the order the graph lists them, with an edge to each path
// they reference (self-references dropped).
struct IndexedGraph {
    std::vector<std::vector<int>> successors;
};

IndexedGraph index_graph(const ClosureGraph& graph) {
    std::unordered_map<std::string_view, int> index;
    for (const auto& p : graph.paths) {
        index.emplace(p.path, static_cast<int>(index.size()) + 1);
    }
    IndexedGraph g;
    g.successors.resize(graph.paths.size() + 1);
    for (const auto& root : graph.roots) {
        if (const auto it = index.find(root); it != index.end()) {
            g.successors[0].push_back(it->second);
        }
    }
    for (std::size_t i = 0; i < graph.paths.size(); ++i) {
        for (const auto& ref : graph.paths[i].references) {
            const auto it = index.find(ref);
            if (it != index.end() && it->second != static_cast<int>(i) + 1) {
                g.successors[i + 1].push_back(it->second);
            }
        }
    }
    return g;
}

// Highest rating first; ties by first (smallest) path.
void sort_for_manifest(std::vector<Layer>& layers) {
    std::sort(layers.begin(), layers.end(), [](const Layer& a, const Layer& b) {
        if (a.merge_rating != b.merge_rating) {
            return a.merge_rating > b.merge_rating;
        }
        return a.paths.front() < b.paths.front();
    });
}

std::size_t find_class(std::vector<std::size_t>& parent, std::size_t x) {
    while (parent[x] != x) {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    return x;
}

// A small path X that path Y references joins Y's layer (the layers become
// one) when nearly every package that uses X uses Y too: X's popularity is
// at most 3/2 of Y's, plus one for Y itself. Both are then in nearly every
// image together, and they fill one layer of the budget instead of two. The
// decision reads only X, Y and their popularity, the same in every image,
// so the joined layer is the same set of paths wherever Y's is. A big path
// stays apart: alone it is shared by every image that has it.
void join_dependencies(const ClosureGraph& graph, const IndexedGraph& g,
                       const Popularity& popularity, const std::vector<int>& layer_of,
                       std::vector<Layer>& layers, std::vector<std::uint64_t>& users) {
    std::vector<std::size_t> parent(layers.size());
    for (std::size_t l = 0; l < parent.size(); ++l) {
        parent[l] = l;
    }
    for (std::size_t y = 1; y < g.successors.size(); ++y) {
        if (layer_of[y] < 0) {
            continue; // not reachable from the roots
        }
        const auto y_users = popularity.of_store_path(graph.paths[y - 1].path);
        const auto limit = saturating_add(saturating_add(y_users, y_users / 2), 1);
        for (const int s : g.successors[y]) {
            const auto x = static_cast<std::size_t>(s);
            const auto& info = graph.paths[x - 1];
            if (layer_of[x] == layer_of[y] || info.nar_size >= k_join_max_size ||
                popularity.of_store_path(info.path) > limit) {
                continue;
            }
            const auto a = find_class(parent, static_cast<std::size_t>(layer_of[x]));
            const auto b = find_class(parent, static_cast<std::size_t>(layer_of[y]));
            parent[std::max(a, b)] = std::min(a, b);
        }
    }
    // Each class becomes the layer of its lowest index; its popularity is
    // its least popular member's, its rating the sum of theirs.
    std::vector<Layer> joined;
    std::vector<std::uint64_t> joined_users;
    std::vector<std::size_t> index_of(layers.size());
    for (std::size_t l = 0; l < layers.size(); ++l) {
        const auto c = find_class(parent, l);
        if (c == l) {
            index_of[l] = joined.size();
            joined.push_back(std::move(layers[l]));
            joined_users.push_back(users[l]);
            continue;
        }
        auto& into = joined[index_of[c]];
        into.paths.insert(into.paths.end(), layers[l].paths.begin(), layers[l].paths.end());
        into.size = saturating_add(into.size, layers[l].size);
        into.merge_rating = saturating_add(into.merge_rating, layers[l].merge_rating);
        joined_users[index_of[c]] = std::min(joined_users[index_of[c]], users[l]);
    }
    layers = std::move(joined);
    users = std::move(joined_users);
}

// The store paths (indexes into graph.paths) reachable from node `from` of
// `g` (0: the image, through its roots), in the graph's order.
std::vector<std::size_t> reachable(const IndexedGraph& g, int from) {
    std::vector<char> seen(g.successors.size(), 0);
    std::vector<int> stack{from};
    seen[static_cast<std::size_t>(from)] = 1;
    while (!stack.empty()) {
        const auto v = static_cast<std::size_t>(stack.back());
        stack.pop_back();
        for (const int s : g.successors[v]) {
            if (!seen[static_cast<std::size_t>(s)]) {
                seen[static_cast<std::size_t>(s)] = 1;
                stack.push_back(s);
            }
        }
    }
    std::vector<std::size_t> paths;
    for (std::size_t v = 1; v < seen.size(); ++v) {
        if (seen[v]) {
            paths.push_back(v - 1);
        }
    }
    return paths;
}

std::vector<Layer> group_by_popularity(const ClosureGraph& graph, const Popularity& popularity,
                                       std::size_t budget) {
    auto g = index_graph(graph);
    const auto n = graph.paths.size() + 1;
    for (const auto i : reachable(g, 0)) { // of the image: not any path the graph lists
        const auto& p = graph.paths[i];
        if (p.nar_size > k_big_threshold ||
            popularity.of_store_path(p.path) >= k_popular_threshold) {
            g.successors[0].push_back(static_cast<int>(i) + 1);
        }
    }

    const auto idom = immediate_dominators(g.successors, 0);

    // Each child of the root starts a layer; everything else joins the layer
    // of its nearest ancestor that is a child of the root.
    std::vector<int> layer_of(n, -1);
    std::vector<Layer> layers;
    std::vector<int> first_node;
    for (std::size_t v = 1; v < n; ++v) {
        if (idom[v] == 0) {
            layer_of[v] = static_cast<int>(layers.size());
            layers.emplace_back();
            first_node.push_back(static_cast<int>(v));
        }
    }
    const auto find_layer = [&](std::size_t v) {
        std::vector<std::size_t> chain;
        while (layer_of[v] < 0) {
            chain.push_back(v);
            v = static_cast<std::size_t>(idom[v]);
        }
        for (auto c : chain) {
            layer_of[c] = layer_of[v];
        }
        return layer_of[v];
    };
    for (std::size_t v = 1; v < n; ++v) {
        if (idom[v] < 0) {
            continue; // not reachable from the roots
        }
        auto& layer = layers[static_cast<std::size_t>(find_layer(v))];
        const auto& info = graph.paths[v - 1];
        layer.paths.push_back(info.path);
        layer.size = saturating_add(layer.size, info.nar_size);
    }
    std::vector<std::uint64_t> users(layers.size());
    for (std::size_t l = 0; l < layers.size(); ++l) {
        const auto& first = graph.paths[static_cast<std::size_t>(first_node[l]) - 1];
        users[l] = popularity.of_store_path(first.path);
        layers[l].merge_rating = saturating_mul(users[l], layers[l].size);
    }
    if (!popularity.empty()) { // without counts, nothing says what goes together
        join_dependencies(graph, g, popularity, layer_of, layers, users);
    }
    // What keeping a layer alone is worth: its size times how many packages
    // use it, counted up to the popular threshold (a path that many packages
    // use is in nearly every image already; more users do not make it more
    // shared on a node).
    std::vector<std::uint64_t> worth(layers.size());
    for (std::size_t l = 0; l < layers.size(); ++l) {
        worth[l] = saturating_mul(std::min(users[l], k_popular_threshold), layers[l].size);
        std::sort(layers[l].paths.begin(), layers[l].paths.end());
    }

    if (layers.size() > budget) {
        // Budget − 1 layers worth most stay alone, the rest become one layer
        // (their ratings add up). Merging pairwise instead would make
        // several layers out of paths that only this image has together,
        // each downloaded again by every image that has most of them.
        std::vector<std::size_t> order(layers.size());
        for (std::size_t i = 0; i < order.size(); ++i) {
            order[i] = i;
        }
        std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
            if (worth[a] != worth[b]) {
                return worth[a] > worth[b];
            }
            return layers[a].paths.front() < layers[b].paths.front();
        });
        std::vector<Layer> kept;
        Layer rest;
        for (std::size_t i = 0; i < order.size(); ++i) {
            auto& layer = layers[order[i]];
            if (i + 1 < budget) {
                kept.push_back(std::move(layer));
                continue;
            }
            rest.paths.insert(rest.paths.end(), layer.paths.begin(), layer.paths.end());
            rest.size = saturating_add(rest.size, layer.size);
            rest.merge_rating = saturating_add(rest.merge_rating, layer.merge_rating);
        }
        std::sort(rest.paths.begin(), rest.paths.end());
        kept.push_back(std::move(rest));
        layers = std::move(kept);
    }
    return layers;
}

Layer layer_of(const ClosureGraph& graph, const std::vector<std::size_t>& paths) {
    Layer l;
    for (const auto i : paths) {
        l.paths.push_back(graph.paths[i].path);
        l.size = saturating_add(l.size, graph.paths[i].nar_size);
    }
    std::sort(l.paths.begin(), l.paths.end());
    l.merge_rating = l.size;
    return l;
}

// The paths of `paths` that size_first() would merge into the leftover, in
// index order; none when they fit the budget.
std::vector<std::size_t> leftover_of(const ClosureGraph& graph, std::vector<std::size_t> paths,
                                     std::size_t budget) {
    if (paths.size() <= budget) {
        return {};
    }
    const auto bigger = [&](std::size_t a, std::size_t b) {
        const auto& pa = graph.paths[a];
        const auto& pb = graph.paths[b];
        return pa.nar_size != pb.nar_size ? pa.nar_size > pb.nar_size : pa.path < pb.path;
    };
    const auto cut = paths.begin() + static_cast<std::ptrdiff_t>(budget - 1);
    std::nth_element(paths.begin(), cut, paths.end(), bigger);
    std::vector<std::size_t> leftover(cut, paths.end());
    std::sort(leftover.begin(), leftover.end());
    return leftover;
}

// The size strategy's layers for some paths of `graph`: one per path if
// they fit the budget, else the budget − 1 biggest alone and the rest in
// one layer, the leftover.
std::vector<Layer> size_first(const ClosureGraph& graph, std::vector<std::size_t> paths,
                              std::size_t budget) {
    const auto leftover = leftover_of(graph, paths, budget);
    std::vector<Layer> layers;
    for (const auto i : paths) {
        if (!std::binary_search(leftover.begin(), leftover.end(), i)) {
            layers.push_back(layer_of(graph, {i}));
        }
    }
    if (!leftover.empty()) {
        layers.push_back(layer_of(graph, leftover));
    }
    return layers;
}

// An image of several packages whose closure does not fit the budget
// starts from the leftover layer the image of one of its packages alone
// has (the biggest such layer; ties by the package's store path): the
// same paths, so the same layer, downloaded once for both images. Its
// other paths are grouped size-first in the rest of the budget. A
// package's closure is the same in every image that has it, whatever else
// the image holds, so this needs no data. Nullopt when that does not apply:
// a budget under 2, fewer than two roots, a closure that fits, or no
// package whose closure alone does not.
std::optional<std::vector<Layer>> reuse_package_leftover(const ClosureGraph& graph,
                                                         const IndexedGraph& g,
                                                         const std::vector<std::size_t>& paths,
                                                         std::size_t budget) {
    auto roots = g.successors[0]; // node ids
    std::sort(roots.begin(), roots.end(), [&](int a, int b) {
        return graph.paths[static_cast<std::size_t>(a) - 1].path <
               graph.paths[static_cast<std::size_t>(b) - 1].path;
    });
    roots.erase(std::unique(roots.begin(), roots.end()), roots.end());
    if (budget < 2 || roots.size() < 2 || paths.size() <= budget) {
        return std::nullopt;
    }
    std::vector<std::size_t> best;
    std::uint64_t best_size = 0;
    for (const int root : roots) { // by store path: ties keep the first
        auto leftover = leftover_of(graph, reachable(g, root), budget);
        std::uint64_t size = 0;
        for (const auto i : leftover) {
            size = saturating_add(size, graph.paths[i].nar_size);
        }
        if (!leftover.empty() && (best.empty() || size > best_size)) {
            best = std::move(leftover);
            best_size = size;
        }
    }
    if (best.empty()) {
        return std::nullopt;
    }
    std::vector<std::size_t> rest; // both in index order
    std::set_difference(paths.begin(), paths.end(), best.begin(), best.end(),
                        std::back_inserter(rest));
    auto layers = size_first(graph, std::move(rest), budget - 1);
    layers.push_back(layer_of(graph, best));
    return layers;
}

std::vector<Layer> group_by_size(const ClosureGraph& graph, std::size_t budget) {
    const auto g = index_graph(graph);
    auto paths = reachable(g, 0);
    if (auto reused = reuse_package_leftover(graph, g, paths, budget)) {
        return std::move(*reused);
    }
    return size_first(graph, std::move(paths), budget);
}

} // namespace

std::optional<LayeringStrategy> parse_layering_strategy(std::string_view name) {
    if (name == "auto") {
        return LayeringStrategy::automatic;
    }
    if (name == "popularity") {
        return LayeringStrategy::popularity;
    }
    if (name == "size" || name == "chunks") { // chunks: its name until the rule changed
        return LayeringStrategy::size;
    }
    return std::nullopt;
}

std::string_view to_string(LayeringStrategy strategy) {
    switch (strategy) {
    case LayeringStrategy::automatic:
        return "auto";
    case LayeringStrategy::popularity:
        return "popularity";
    case LayeringStrategy::size:
        return "size";
    }
    return "auto";
}

LayeringStrategy effective_strategy(LayeringStrategy configured, const Popularity& popularity) {
    if (configured != LayeringStrategy::automatic) {
        return configured;
    }
    return popularity.empty() ? LayeringStrategy::size : LayeringStrategy::popularity;
}

std::string layering_identity(LayeringStrategy configured, const Popularity& popularity) {
    const auto strategy = effective_strategy(configured, popularity);
    if (strategy == LayeringStrategy::popularity) {
        // "/3": since a small dependency joins its referrer ("/2": the
        // layers worth most stay alone, the rest become one); images grouped
        // before are grouped again, their unchanged layers reused.
        return "popularity/3:" + popularity.digest();
    }
    // "size:1" (before it, "chunks:1": the leftover cut by name hashes).
    return std::string(to_string(strategy)) + ":1";
}

std::vector<Layer> group_layers(const ClosureGraph& graph, const Popularity& popularity,
                                std::size_t budget, LayeringStrategy strategy) {
    budget = std::max<std::size_t>(budget, 1);
    auto layers = effective_strategy(strategy, popularity) == LayeringStrategy::popularity
                      ? group_by_popularity(graph, popularity, budget)
                      : group_by_size(graph, budget);
    sort_for_manifest(layers);
    return layers;
}

std::string layers_to_json(const std::vector<Layer>& layers) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("layers");
    w.StartArray();
    for (const auto& layer : layers) {
        w.StartObject();
        w.Key("paths");
        w.StartArray();
        for (const auto& p : layer.paths) {
            w.String(p.c_str(), p.size());
        }
        w.EndArray();
        w.Key("size");
        w.Uint64(layer.size);
        w.Key("mergeRating");
        w.Uint64(layer.merge_rating);
        w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize());
}

} // namespace nixery
