#include "cmd/prebuild.hpp"

#include "cmd/args.hpp"
#include "cmd/local_builder.hpp"
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
    int failed = 0;
    for (const auto& w : wanted) {
        const auto image =
            (*builder)->image(w.name, w.tag, {ManifestFormat::docker, ManifestFormat::docker});
        if (image) {
            std::printf("ready %s:%s %s\n", w.name.c_str(), w.tag.c_str(), image->digest.c_str());
        } else {
            ++failed;
            // A build's failure was logged by the build; others are told here.
            if (!image.error().remembered && !image.error().internal.empty()) {
                log::error("prebuild failed", {{"image", w.name},
                                               {"tag", w.tag},
                                               {"error", image.error().message},
                                               {"cause", image.error().internal}});
            }
            std::printf("failed %s:%s: %s\n", w.name.c_str(), w.tag.c_str(),
                        image.error().message.c_str());
        }
        std::fflush(stdout);
    }
    return failed == 0 ? 0 : 1;
}

} // namespace nixery
