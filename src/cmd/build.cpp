#include "cmd/build.hpp"

#include "cmd/args.hpp"
#include "cmd/local_builder.hpp"
#include "cmd/stop_signals.hpp"
#include "core/image.hpp"
#include "core/reference.hpp"
#include "layout/image_files.hpp"

#include <cstdio>
#include <filesystem>
#include <optional>
#include <sys/utsname.h>

namespace nixery {

namespace {

constexpr const char* k_build_usage =
    "usage: nixery build NAME[:TAG] [--output DIR] [--docker-archive FILE]\n"
    "  --output DIR           write an OCI image layout to DIR (new, empty, or a layout)\n"
    "  --docker-archive FILE  write a tarball for `docker load` to FILE\n";

struct BuildArgs {
    NameAndTag image;
    std::optional<std::string> output;
    std::optional<std::string> docker_archive;
};

constexpr Usage k_usage{"build", k_build_usage};

constexpr OptionSpec k_options[] = {
    {"--output", Takes::value, "a directory", "-o"},
    {"--docker-archive", Takes::value, "a file name"},
};

int usage_error(const std::string& message) {
    return nixery::usage_error(k_usage, message);
}

// The architecture `docker load` here runs images for, as OCI names it.
std::string host_architecture() {
    utsname u{};
    if (::uname(&u) == 0 && std::string_view(u.machine) == "aarch64") {
        return std::string(oci_architecture(Arch::arm64));
    }
    return std::string(oci_architecture(Arch::amd64));
}

} // namespace

int build_command(const std::vector<std::string>& args) {
    const auto given = parse_args(k_usage, k_options, Positionals::any, args);
    if (!given) {
        return given.error();
    }
    BuildArgs parsed;
    parsed.output = given->value("--output");
    parsed.docker_archive = given->value("--docker-archive");
    if (parsed.output && parsed.output->empty()) {
        return usage_error("--output needs a directory");
    }
    if (parsed.docker_archive && parsed.docker_archive->empty()) {
        return usage_error("--docker-archive needs a file name");
    }
    const auto& images = given->positionals;
    if (images.empty()) {
        return usage_error("no image named");
    }
    if (images.size() > 1) {
        return usage_error("one image at a time (got \"" + images[0] + "\" and \"" + images[1] +
                           "\")");
    }
    const auto& image = images.front();
    if (!parsed.output && !parsed.docker_archive) {
        return usage_error("nothing to write: give --output DIR or --docker-archive FILE");
    }
    parsed.image = split_name_and_tag(image);
    const auto& name = parsed.image.name;
    const auto& tag = parsed.image.tag;
    if (!is_valid_repository_name(name)) {
        return usage_error("\"" + name +
                           "\" is not a valid image name: package names in lowercase letters, "
                           "digits and . _ -, joined by /");
    }
    if (!is_valid_tag(tag)) {
        return usage_error("\"" + tag +
                           "\" is not a valid tag: up to 128 letters, digits and . _ -, not "
                           "starting with . or -");
    }

    // Refused before a build that may take long.
    const auto target = parsed.output ? check_layout_target(*parsed.output) : Result<void>();
    const auto archive =
        parsed.docker_archive ? check_archive_target(*parsed.docker_archive) : Result<void>();
    for (const auto* checked : {&target, &archive}) {
        if (!*checked) {
            std::fprintf(stderr, "nixery build: %s\n", checked->error().message.c_str());
            return 1;
        }
    }
    if (parsed.output && parsed.docker_archive) {
        namespace fs = std::filesystem;
        std::error_code ec1, ec2;
        if (fs::weakly_canonical(*parsed.output, ec1) ==
                fs::weakly_canonical(*parsed.docker_archive, ec2) &&
            !ec1 && !ec2) {
            return usage_error("--output and --docker-archive name the same path");
        }
    }

    auto builder = LocalBuilder::open();
    if (!builder) {
        std::fprintf(stderr, "nixery build: %s\n", builder.error().message.c_str());
        return 1;
    }
    auto& b = **builder;
    stop_on_signals();
    const auto reference = name + ":" + tag;
    // Each output holds the document the registry serves its kind of
    // client: the OCI manifest (or index) for the layout, the Docker
    // manifest for `docker load` (gzip layers, which every Docker reads), the
    // host's as a client that takes no list gets it: an archive holds one
    // image, so no other platform is built for it.
    const auto write = [&](ManifestChoice choice, const char* kind, const std::string& where,
                           auto&& writer) -> bool {
        auto served = b.image(name, tag, choice);
        if (stop_signal() != 0) {
            std::fprintf(stderr, "nixery build: stopped by %s; \"%s\" not written\n",
                         stop_signal_name(), where.c_str());
            return false;
        }
        if (!served) {
            std::fprintf(stderr, "nixery build: building %s failed: %s\n", reference.c_str(),
                         served.error().message.c_str());
            return false;
        }
        const TopDocument top{std::move(served->body), std::move(served->media_type),
                              std::move(served->digest)};
        auto written = writer(top);
        if (!written) {
            std::fprintf(stderr, "nixery build: writing %s to \"%s\" failed: %s\n",
                         reference.c_str(), where.c_str(), written.error().message.c_str());
            return false;
        }
        std::printf("%s %s %s %s\n", kind, where.c_str(), reference.c_str(), top.digest.c_str());
        std::fflush(stdout);
        return true;
    };
    if (parsed.output && !write({ManifestFormat::oci, ManifestFormat::oci}, "oci-layout",
                                *parsed.output, [&](const TopDocument& top) {
                                    return write_oci_layout(b.storage(), top, tag, *parsed.output);
                                })) {
        return stopped_status(1);
    }
    if (parsed.docker_archive &&
        !write({ManifestFormat::docker, std::nullopt}, "docker-archive", *parsed.docker_archive,
               [&](const TopDocument& top) {
                   return write_docker_archive(b.storage(), top, host_architecture(), reference,
                                               *parsed.docker_archive);
               })) {
        return stopped_status(1);
    }
    return 0;
}

} // namespace nixery
