#include "cmd/popcount.hpp"

#include "cmd/popcount_runs.hpp"
#include "cmd/progress.hpp"
#include "util/log.hpp"
#include "util/text.hpp"

#include <cstdio>

namespace nixery {

int popcount_failure(const std::string& message) {
    std::fprintf(stderr, "nixery popcount: %s\n", message.c_str());
    return 1;
}

int popcount_failure(Progress& progress, const std::string& message) {
    progress.stop();
    return popcount_failure(message);
}

int popcount_command(const std::vector<std::string>& args) {
    std::string output;
    CacheCount cache;
    bool from_cache = false;
    bool cache_option = false;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const bool has_value = i + 1 < args.size();
        if (args[i] == "--output" && has_value) {
            output = args[++i];
        } else if (args[i] == "--channel" && has_value) {
            const auto& channel = args[++i];
            if (channel.empty() || channel.find_first_of("/?#% ") != std::string::npos) {
                return popcount_failure("--channel \"" + channel + "\" is not a channel name");
            }
            cache.store_paths = "https://channels.nixos.org/" + channel + "/store-paths.xz";
            from_cache = true;
        } else if (args[i] == "--store-paths" && has_value) {
            cache.store_paths = args[++i];
            from_cache = true;
        } else if (args[i] == "--cache" && has_value) {
            cache.cache = args[++i];
            cache_option = true;
        } else if (args[i] == "--journal" && has_value) {
            cache.journal = args[++i];
            cache_option = true;
        } else if (args[i] == "--jobs" && has_value) {
            const auto& v = args[++i];
            const auto jobs = parse_decimal(v, 999);
            if (!jobs || *jobs == 0) {
                return popcount_failure("--jobs must be a whole number from 1 to 999, not \"" + v +
                                        "\"");
            }
            cache.jobs = static_cast<int>(*jobs);
            cache_option = true;
        } else {
            std::fprintf(
                stderr,
                "usage: nixery popcount [--output FILE]\n"
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
                "  interrupted one stopped\n");
            return 2;
        }
    }
    if (from_cache) {
        while (!cache.cache.empty() && cache.cache.back() == '/') {
            cache.cache.pop_back();
        }
        // Narinfo files come over HTTP alone (the client speaks no file://).
        const auto scheme = ascii_lowercase(cache.cache.substr(0, cache.cache.find("://")));
        if (scheme != "http" && scheme != "https") {
            return popcount_failure(
                "--cache \"" + log::redact_url(cache.cache) +
                "\" is not an http(s):// URL: serve a file:// cache over HTTP, e.g. "
                "python3 -m http.server");
        }
        cache.output = output;
        if (cache.journal.empty()) {
            cache.journal = output.empty() ? "popcount.journal" : output + ".journal";
        }
        return count_from_cache(cache);
    }
    if (cache_option) {
        return popcount_failure("--cache, --journal and --jobs need --channel or --store-paths");
    }
    return count_by_building(output);
}

} // namespace nixery
