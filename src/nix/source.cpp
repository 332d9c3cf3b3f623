#include "nix/source.hpp"

#include "core/routes.hpp"
#include "util/log.hpp"
#include "util/text.hpp"

namespace nixery {

namespace {

// A directory on this machine: the tag selects nothing, and the content can
// change at any time, so evaluations expire after NIXERY_SOURCE_TTL.
class PathSource final : public PackageSource {
public:
    explicit PathSource(std::string path) : m_path(std::move(path)) {}

    Result<ResolvedSource, RegistryError> resolve(std::string_view) override {
        return ResolvedSource{"path:" + m_path, Pinning::moving};
    }

    Result<std::string, RegistryError> prepare(const ResolvedSource&) override {
        return R"({"type":"path","path":)" + json_string(m_path) + "}";
    }

private:
    std::string m_path;
};

} // namespace

bool is_commit_hash(std::string_view text) {
    return is_lower_hex(text, 40);
}

RegistryError source_unavailable(std::string what, std::string_view cause) {
    log::error("package source unavailable", {{"source", what}, {"error", cause}});
    return RegistryError{503,
                         "UNAVAILABLE",
                         "the package source (" + what +
                             ") cannot be reached: " + std::string(cause) + "; retry later",
                         {}};
}

std::unique_ptr<PackageSource> make_path_source(std::string path) {
    return std::make_unique<PathSource>(std::move(path));
}

NixSettings nix_settings(const Config& config) {
    return NixSettings{config.data.nix_dir / "image.nix", config.nix_timeout, config.build_timeout,
                       config.nixpkgs_config};
}

std::unique_ptr<PackageSource> make_source(const Config& config, const Nix& nix) {
    switch (config.source) {
    case SourceKind::path:
        return make_path_source(config.source_location);
    case SourceKind::git:
        return make_git_source(config);
    case SourceKind::channel:
        return make_channel_source(config, nix);
    }
    return nullptr;
}

} // namespace nixery
