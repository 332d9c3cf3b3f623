#include "core/layers.hpp"

#include "core/dominators.hpp"

#include <algorithm>
#include <limits>
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

// Ascending by rating; ties by first (smallest) path.
bool lower_rated(const Layer& a, const Layer& b) {
    if (a.merge_rating != b.merge_rating) {
        return a.merge_rating < b.merge_rating;
    }
    return a.paths.front() < b.paths.front();
}

} // namespace

std::vector<Layer> group_layers(const ClosureGraph& graph, const Popularity& popularity,
                                std::size_t budget) {
    budget = std::max<std::size_t>(budget, 1);
    // Node 0 is the image; store paths follow in the order the graph lists them.
    std::unordered_map<std::string_view, int> index;
    for (const auto& p : graph.paths) {
        index.emplace(p.path, static_cast<int>(index.size()) + 1);
    }
    const auto n = graph.paths.size() + 1;
    std::vector<std::vector<int>> successors(n);
    for (const auto& root : graph.roots) {
        if (const auto it = index.find(root); it != index.end()) {
            successors[0].push_back(it->second);
        }
    }
    for (std::size_t i = 0; i < graph.paths.size(); ++i) {
        const auto& p = graph.paths[i];
        for (const auto& ref : p.references) {
            const auto it = index.find(ref);
            if (it != index.end() && it->second != static_cast<int>(i) + 1) {
                successors[i + 1].push_back(it->second);
            }
        }
        if (p.nar_size > k_big_threshold ||
            popularity.of_store_path(p.path) >= k_popular_threshold) {
            successors[0].push_back(static_cast<int>(i) + 1);
        }
    }

    const auto idom = immediate_dominators(successors, 0);

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
    for (std::size_t l = 0; l < layers.size(); ++l) {
        const auto& first = graph.paths[static_cast<std::size_t>(first_node[l]) - 1];
        layers[l].merge_rating =
            saturating_mul(popularity.of_store_path(first.path), layers[l].size);
        std::sort(layers[l].paths.begin(), layers[l].paths.end());
    }

    while (layers.size() > budget) {
        std::sort(layers.begin(), layers.end(), lower_rated);
        Layer merged;
        merged.paths = std::move(layers[0].paths);
        merged.paths.insert(merged.paths.end(), layers[1].paths.begin(), layers[1].paths.end());
        std::sort(merged.paths.begin(), merged.paths.end());
        merged.size = saturating_add(layers[0].size, layers[1].size);
        merged.merge_rating = saturating_add(layers[0].merge_rating, layers[1].merge_rating);
        layers.erase(layers.begin(), layers.begin() + 2);
        layers.push_back(std::move(merged));
    }
    std::sort(layers.begin(), layers.end(), [](const Layer& a, const Layer& b) {
        if (a.merge_rating != b.merge_rating) {
            return a.merge_rating > b.merge_rating;
        }
        return a.paths.front() < b.paths.front();
    });
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
