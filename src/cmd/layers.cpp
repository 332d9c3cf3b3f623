#include "cmd/layers.hpp"

#include "cmd/args.hpp"
#include "core/closure_graph.hpp"
#include "core/layers.hpp"
#include "core/popularity.hpp"
#include "util/files.hpp"
#include "util/text.hpp"

#include <cstdio>

namespace nixery {

namespace {

constexpr Usage k_usage{
    "layers",
    "usage: nixery layers --graph FILE [--popularity FILE] [--budget N] [--strategy S]\n"
    "  S: auto (default: popularity with --popularity, size without), popularity or size\n"};

} // namespace

int layers_command(const std::vector<std::string>& args) {
    constexpr OptionSpec options[] = {{"--graph", Takes::value, "a file"},
                                      {"--popularity", Takes::value, "a file"},
                                      {"--budget", Takes::value, "a number of layers"},
                                      {"--strategy", Takes::value, "auto, popularity or size"}};
    const auto given = parse_args(k_usage, options, Positionals::none, args);
    if (!given) {
        return given.error();
    }
    const auto graph_file = given->value("--graph").value_or("");
    const auto popularity_file = given->value("--popularity").value_or("");
    std::size_t budget = k_default_layer_budget;
    auto strategy = LayeringStrategy::automatic;
    if (const auto v = given->value("--strategy")) {
        const auto parsed = parse_layering_strategy(*v);
        if (!parsed) {
            return usage_error(k_usage,
                               "--strategy must be auto, popularity or size, not \"" + *v + "\"");
        }
        strategy = *parsed;
    }
    if (const auto v = given->value("--budget")) {
        const auto parsed = parse_decimal(*v, 999999);
        if (!parsed || *parsed == 0) {
            return usage_error(k_usage,
                               "--budget must be a positive whole number, not \"" + *v + "\"");
        }
        budget = static_cast<std::size_t>(*parsed);
    }
    if (graph_file.empty()) {
        return usage_error(k_usage, "--graph FILE is required");
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
