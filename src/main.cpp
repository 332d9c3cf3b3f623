// The nixery command: `serve` (the FastCGI worker pool), `run` (a local
// instance: nginx and the pool in the foreground), `gc` (garbage collection
// of an instance), `nginx-config` (the production nginx configuration), and
// tools that work on their own (`layers`, `popcount`).

#include "core/closure_graph.hpp"
#include "core/layers.hpp"
#include "core/popularity.hpp"
#include "gc_command.hpp"
#include "launcher.hpp"
#include "nginx_config.hpp"
#include "popcount.hpp"
#include "serve.hpp"
#include "util/files.hpp"

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr const char* k_usage = R"(usage: nixery COMMAND [ARGS]

commands:
  serve      run the FastCGI worker pool (configured by environment variables)
  run        run nginx and the worker pool in the foreground (what `make run` does)
  gc [--keep-days N] [--dry-run]
             delete the blobs no image served in the last N days references
             (default NIXERY_GC_KEEP_DAYS, 30; images served within the
             last hour are always kept), and what killed processes left behind
  nginx-config [--server-name NAMES] [--listen [ADDR:]PORT] [--http-listen [ADDR:]PORT]
             [--certificate FILE] [--certificate-key FILE] [--socket PATH]
             [--http2-directive] [--ktls]
             print the production nginx configuration (TLS, HTTP/2) for the
             instance the environment configures; --http2-directive for
             nginx 1.25.1 and newer, --ktls for kernel TLS (nginx 1.21.4 and
             newer with OpenSSL 3)
  layers --graph FILE [--popularity FILE] [--budget N] [--strategy S]
             print how the closure in FILE (Nix's exportReferencesGraph JSON)
             is grouped into layers, in manifest order; S is auto (default:
             popularity with --popularity, chunks without), popularity or chunks
  popcount [--output FILE]
             compute popularity data (NIX_POPULARITY_URL) for the package set
             configured as for serve
)";

int layers_command(const std::vector<std::string>& args) {
    std::string graph_file;
    std::string popularity_file;
    std::size_t budget = nixery::k_default_budget;
    auto strategy = nixery::LayeringStrategy::automatic;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const auto& a = args[i];
        const bool has_value = i + 1 < args.size();
        if (a == "--graph" && has_value) {
            graph_file = args[++i];
        } else if (a == "--popularity" && has_value) {
            popularity_file = args[++i];
        } else if (a == "--strategy" && has_value) {
            const auto parsed = nixery::parse_layering_strategy(args[++i]);
            if (!parsed) {
                std::fprintf(stderr,
                             "nixery layers: --strategy must be auto, popularity or chunks, not "
                             "\"%s\"\n",
                             args[i].c_str());
                return 2;
            }
            strategy = *parsed;
        } else if (a == "--budget" && has_value) {
            const auto& v = args[++i];
            if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos ||
                v.size() > 6 || std::stoul(v) == 0) {
                std::fprintf(
                    stderr, "nixery layers: --budget must be a positive whole number, not \"%s\"\n",
                    v.c_str());
                return 2;
            }
            budget = std::stoul(v);
        } else {
            std::fprintf(stderr, "nixery layers: unexpected argument \"%s\"\n%s", a.c_str(),
                         k_usage);
            return 2;
        }
    }
    if (graph_file.empty()) {
        std::fprintf(stderr, "nixery layers: --graph FILE is required\n");
        return 2;
    }
    const auto graph_text = nixery::read_file(graph_file);
    if (!graph_text) {
        std::fprintf(stderr, "nixery layers: %s\n", graph_text.error().message.c_str());
        return 1;
    }
    const auto graph = nixery::parse_references_graph(*graph_text);
    if (!graph) {
        std::fprintf(stderr, "nixery layers: \"%s\": %s\n", graph_file.c_str(),
                     graph.error().message.c_str());
        return 1;
    }
    nixery::Popularity popularity;
    if (!popularity_file.empty()) {
        const auto text = nixery::read_file(popularity_file);
        if (!text) {
            std::fprintf(stderr, "nixery layers: %s\n", text.error().message.c_str());
            return 1;
        }
        auto parsed = nixery::Popularity::parse(*text);
        if (!parsed) {
            std::fprintf(stderr, "nixery layers: \"%s\": %s\n", popularity_file.c_str(),
                         parsed.error().message.c_str());
            return 1;
        }
        popularity = std::move(*parsed);
    }
    const auto json =
        nixery::layers_to_json(nixery::group_layers(*graph, popularity, budget, strategy));
    std::printf("%s\n", json.c_str());
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fputs(k_usage, stderr);
        return 2;
    }
    const std::string command = argv[1];
    const std::vector<std::string> args(argv + 2, argv + argc);
    if (command == "serve" && args.empty()) {
        return nixery::serve_command();
    }
    if (command == "run" && args.empty()) {
        return nixery::run_command(argv[0]);
    }
    if (command == "gc") {
        return nixery::gc_command(args);
    }
    if (command == "nginx-config") {
        return nixery::nginx_config_command(args);
    }
    if (command == "layers") {
        return layers_command(args);
    }
    if (command == "popcount") {
        return nixery::popcount_command(args);
    }
    if (command == "--help" || command == "help" || command == "-h") {
        std::fputs(k_usage, stdout);
        return 0;
    }
    std::fprintf(stderr, "nixery: unknown command \"%s\"\n%s", command.c_str(), k_usage);
    return 2;
}
