// The nixery command: `serve` (the FastCGI worker pool), `run` (a local
// instance: nginx and the pool in the foreground), `gc` (garbage collection
// of an instance), `prebuild` (images ahead of their first pull), `build`
// (an image written as an OCI layout or a `docker load` tarball),
// `nginx-config` (the production nginx configuration), and tools that work
// on their own (`layers`, `popcount`). Each command lives in
// src/cmd/ (parse, wire, exit code); this file only dispatches to them.

#include "cmd/build.hpp"
#include "cmd/gc.hpp"
#include "cmd/layers.hpp"
#include "cmd/nginx_config.hpp"
#include "cmd/popcount.hpp"
#include "cmd/prebuild.hpp"
#include "cmd/run.hpp"
#include "cmd/serve.hpp"

#include <cstdio>
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
  prebuild IMAGE[:TAG]...
             build images before their first pull (popular ones, big ones),
             for the instance the environment configures; prints each
             image's digest
  build NAME[:TAG] [--output DIR] [--docker-archive FILE]
             build an image here, configured as for serve (no nginx, no
             running instance needed; it shares the build cache of the
             state directory and storage it is given) and write it as an
             OCI image layout in DIR (the OCI manifest, named TAG in
             index.json) and/or a tarball for `docker load` (the Docker
             manifest, tagged NAME:TAG); prints each output's manifest digest
  nginx-config [--server-name NAMES] [--listen [ADDR:]PORT] [--http-listen [ADDR:]PORT]
             [--certificate FILE] [--certificate-key FILE] [--socket PATH]
             [--cache-dir DIR] [--access-log FILE|off] [--http2-directive] [--ktls]
             print the production nginx configuration (TLS, HTTP/2) for the
             instance the environment configures; --http2-directive for
             nginx 1.25.1 and newer, --ktls for kernel TLS (nginx 1.21.4 and
             newer with OpenSSL 3)
  layers --graph FILE [--popularity FILE] [--budget N] [--strategy S]
             print how the closure in FILE (Nix's exportReferencesGraph JSON)
             is grouped into layers, in manifest order; S is auto (default:
             popularity with --popularity, size without), popularity or size
  popcount [--output FILE]
             compute popularity data (NIX_POPULARITY_URL) for the package set
             configured as for serve, building it
  popcount (--channel NAME | --store-paths URL) [--cache URL] [--journal FILE]
           [--jobs N] [--output FILE]
             the same from a channel's list of store paths and a binary
             cache's narinfo files, without building; resumable
)";

} // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fputs(k_usage, stderr);
        return 2;
    }
    const std::string command = argv[1];
    const std::vector<std::string> args(argv + 2, argv + argc);
    if (command == "serve" || command == "run") {
        // Configured by the environment alone: any argument is a mistake
        // or a request for help.
        if (!args.empty()) {
            const bool help = args.front() == "--help" || args.front() == "-h";
            std::fprintf(help ? stdout : stderr, "%s%s",
                         help ? "" : "nixery: serve and run take no arguments\n", k_usage);
            return help ? 0 : 2;
        }
        return command == "serve" ? nixery::serve_command() : nixery::run_command(argv[0]);
    }
    if (command == "gc") {
        return nixery::gc_command(args);
    }
    if (command == "build") {
        return nixery::build_command(args);
    }
    if (command == "prebuild") {
        return nixery::prebuild_command(args);
    }
    if (command == "nginx-config") {
        return nixery::nginx_config_command(args);
    }
    if (command == "layers") {
        return nixery::layers_command(args);
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
