#include "cmd/popcount.hpp"

#include "cmd/args.hpp"
#include "cmd/popcount_runs.hpp"
#include "cmd/progress.hpp"
#include "cmd/stop_signals.hpp"
#include "util/log.hpp"
#include "util/text.hpp"

#include <cstdio>

namespace nixery {

int popcount_failure(const std::string& message) {
    // After a stop signal, what failed is Nix that it stopped.
    if (stop_signal() != 0) {
        std::fprintf(stderr, "nixery popcount: stopped by %s; nothing written\n",
                     stop_signal_name());
        return stopped_status(1);
    }
    std::fprintf(stderr, "nixery popcount: %s\n", message.c_str());
    return 1;
}

int popcount_failure(Progress& progress, const std::string& message) {
    progress.stop();
    return popcount_failure(message);
}

namespace {

constexpr Usage k_usage{
    "popcount", "usage: nixery popcount [--output FILE]\n"
                "  counts, for the package set configured as for `nixery serve`\n"
                "  (NIXERY_PKGS_PATH, NIXERY_PKGS_REPO or NIXERY_CHANNEL), how many\n"
                "  packages' runtime closures contain each package, building them\n"
                "usage: nixery popcount (--channel NAME | --store-paths URL) [--cache URL]\n"
                "                       [--journal FILE] [--jobs N] [--output FILE]\n"
                "  counts the same from a channel's list of store paths\n"
                "  (https://channels.nixos.org/NAME/store-paths.xz) and the narinfo files\n"
                "  of a binary cache (default https://cache.nixos.org), without building\n"
                "  or downloading anything else; the journal (default FILE.journal, or\n"
                "  popcount.journal) keeps what was read, so a run resumes where an\n"
                "  interrupted one stopped\n"};

constexpr OptionSpec k_options[] = {
    {"--output", Takes::value, "a file name"},  {"--channel", Takes::value, "a channel name"},
    {"--store-paths", Takes::value, "a URL"},   {"--cache", Takes::value, "a URL"},
    {"--journal", Takes::value, "a file name"}, {"--jobs", Takes::value, "a number"},
};

} // namespace

int popcount_command(const std::vector<std::string>& args) {
    const auto given = parse_args(k_usage, k_options, Positionals::none, args);
    if (!given) {
        return given.error();
    }
    const auto output = given->value("--output").value_or("");
    const auto channel = given->value("--channel");
    const auto store_paths = given->value("--store-paths");
    const bool cache_option =
        given->has("--cache") || given->has("--journal") || given->has("--jobs");
    if (!channel && !store_paths) {
        if (cache_option) {
            return usage_error(k_usage, "--cache, --journal and --jobs need --channel or "
                                        "--store-paths");
        }
        return count_by_building(output);
    }
    if (channel && store_paths) {
        return usage_error(k_usage, "--channel and --store-paths both name the list of store "
                                    "paths: give one");
    }
    CacheCount cache;
    if (channel) {
        if (channel->empty() || channel->find_first_of("/?#% ") != std::string::npos) {
            return usage_error(k_usage, "--channel \"" + *channel + "\" is not a channel name");
        }
        cache.store_paths = "https://channels.nixos.org/" + *channel + "/store-paths.xz";
    } else {
        cache.store_paths = *store_paths;
    }
    if (const auto v = given->value("--jobs")) {
        const auto jobs = parse_decimal(*v, 999);
        if (!jobs || *jobs == 0) {
            return usage_error(k_usage,
                               "--jobs must be a whole number from 1 to 999, not \"" + *v + "\"");
        }
        cache.jobs = static_cast<int>(*jobs);
    }
    cache.cache = given->value("--cache").value_or(cache.cache);
    while (!cache.cache.empty() && cache.cache.back() == '/') {
        cache.cache.pop_back();
    }
    // Narinfo files come over HTTP alone (the client speaks no file://).
    const auto scheme = ascii_lowercase(cache.cache.substr(0, cache.cache.find("://")));
    if (scheme != "http" && scheme != "https") {
        return usage_error(k_usage, "--cache \"" + log::redact_url(cache.cache) +
                                        "\" is not an http(s):// URL: serve a file:// cache over "
                                        "HTTP, e.g. python3 -m http.server");
    }
    cache.output = output;
    cache.journal = given->value("--journal").value_or("");
    if (cache.journal.empty()) {
        cache.journal = output.empty() ? "popcount.journal" : output + ".journal";
    }
    return count_from_cache(cache);
}

} // namespace nixery
