#include "cmd/layers.hpp"

#include "core/closure_graph.hpp"
#include "core/layers.hpp"
#include "core/popularity.hpp"
#include "util/files.hpp"
#include "util/text.hpp"

#include <cstdio>

namespace nixery {

namespace {

constexpr const char* k_layers_usage =
    "usage: nixery layers --graph FILE [--popularity FILE] [--budget N] [--strategy S]\n"
    "  S: auto (default: popularity with --popularity, size without), popularity or size\n";

} // namespace

int layers_command(const std::vector<std::string>& args) {
    std::string graph_file;
    std::string popularity_file;
    std::size_t budget = k_default_layer_budget;
    auto strategy = LayeringStrategy::automatic;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const auto& a = args[i];
        const bool has_value = i + 1 < args.size();
        if (a == "--graph" && has_value) {
            graph_file = args[++i];
        } else if (a == "--popularity" && has_value) {
            popularity_file = args[++i];
        } else if (a == "--strategy" && has_value) {
            const auto parsed = parse_layering_strategy(args[++i]);
            if (!parsed) {
                std::fprintf(stderr,
                             "nixery layers: --strategy must be auto, popularity or size, not "
                             "\"%s\"\n",
                             args[i].c_str());
                return 2;
            }
            strategy = *parsed;
        } else if (a == "--budget" && has_value) {
            const auto& v = args[++i];
            const auto parsed = parse_decimal(v, 999999);
            if (!parsed || *parsed == 0) {
                std::fprintf(
                    stderr, "nixery layers: --budget must be a positive whole number, not \"%s\"\n",
                    v.c_str());
                return 2;
            }
            budget = static_cast<std::size_t>(*parsed);
        } else {
            std::fprintf(stderr, "nixery layers: unexpected argument \"%s\"\n%s", a.c_str(),
                         k_layers_usage);
            return 2;
        }
    }
    if (graph_file.empty()) {
        std::fprintf(stderr, "nixery layers: --graph FILE is required\n");
        return 2;
    }
    const auto graph_text = read_file(graph_file);
    if (!graph_text) {
        std::fprintf(stderr, "nixery layers: %s\n", graph_text.error().message.c_str());
        return 1;
    }
    const auto graph = parse_references_graph(*graph_text);
    if (!graph) {
        std::fprintf(stderr, "nixery layers: \"%s\": %s\n", graph_file.c_str(),
                     graph.error().message.c_str());
        return 1;
    }
    Popularity popularity;
    if (!popularity_file.empty()) {
        const auto text = read_file(popularity_file);
        if (!text) {
            std::fprintf(stderr, "nixery layers: %s\n", text.error().message.c_str());
            return 1;
        }
        auto parsed = Popularity::parse(*text);
        if (!parsed) {
            std::fprintf(stderr, "nixery layers: \"%s\": %s\n", popularity_file.c_str(),
                         parsed.error().message.c_str());
            return 1;
        }
        popularity = std::move(*parsed);
    }
    const auto json = layers_to_json(group_layers(*graph, popularity, budget, strategy));
    if (auto written = write_stdout(json + "\n"); !written) {
        std::fprintf(stderr, "nixery layers: %s\n", written.error().message.c_str());
        return 1;
    }
    return 0;
}

} // namespace nixery
