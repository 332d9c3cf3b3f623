#include "cmd/prebuild.hpp"

#include "cmd/args.hpp"
#include "cmd/local_builder.hpp"
#include "cmd/stop_signals.hpp"
#include "core/reference.hpp"
#include "util/log.hpp"

#include <cstdio>

namespace nixery {

namespace {

constexpr Usage k_usage{"prebuild", "usage: nixery prebuild IMAGE[:TAG]...\n"};

} // namespace

int prebuild_command(const std::vector<std::string>& args) {
    const auto given = parse_args(k_usage, {}, Positionals::any, args);
    if (!given) {
        return given.error();
    }
    std::vector<NameAndTag> wanted;
    for (const auto& a : given->positionals) {
        auto w = split_name_and_tag(a);
        if (!is_valid_repository_name(w.name) || !is_valid_tag(w.tag)) {
            return usage_error(k_usage, "\"" + a + "\" is not an image name[:tag]");
        }
        wanted.push_back(std::move(w));
    }
    if (wanted.empty()) {
        return usage_error(k_usage, "no image named");
    }
    auto builder = LocalBuilder::open();
    if (!builder) {
        log::error("prebuild failed", {{"error", builder.error().message}});
        return 1;
    }
    stop_on_signals();
    // After a stop signal, the image being built when it came and those
    // after it are not built.
    const auto stopped = [&](auto from) {
        std::string rest;
        for (; from != wanted.end(); ++from) {
            rest += (rest.empty() ? "" : ", ") + from->name + ":" + from->tag;
        }
        std::fprintf(stderr, "nixery prebuild: stopped by %s; not built: %s\n", stop_signal_name(),
                     rest.c_str());
        return stopped_status(1);
    };
    int failed = 0;
    for (auto w = wanted.begin(); w != wanted.end(); ++w) {
        const auto image =
            (*builder)->image(w->name, w->tag, {ManifestFormat::docker, ManifestFormat::docker});
        if (!image && stop_signal() != 0) {
            return stopped(w);
        }
        if (image) {
            std::printf("ready %s:%s %s\n", w->name.c_str(), w->tag.c_str(), image->digest.c_str());
        } else {
            ++failed;
            // A build's failure was logged by the build; others are told here.
            if (!image.error().remembered && !image.error().internal.empty()) {
                log::error("prebuild failed", {{"image", w->name},
                                               {"tag", w->tag},
                                               {"error", image.error().message},
                                               {"cause", image.error().internal}});
            }
            std::printf("failed %s:%s: %s\n", w->name.c_str(), w->tag.c_str(),
                        image.error().message.c_str());
        }
        std::fflush(stdout);
        if (stop_signal() != 0 && w + 1 != wanted.end()) {
            return stopped(w + 1);
        }
    }
    return failed == 0 ? 0 : 1;
}

} // namespace nixery
