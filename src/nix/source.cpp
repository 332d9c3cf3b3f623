#include "nix/source.hpp"

#include "core/routes.hpp"

namespace nixery {

namespace {

// A directory on this machine: the tag does not select anything, and the
// content can change at any time, so evaluations expire (NIXERY_SOURCE_TTL).
class PathSource final : public PackageSource {
public:
    explicit PathSource(std::string path) : m_path(std::move(path)) {}

    Result<ResolvedSource, RegistryError> resolve(std::string_view) override {
        return ResolvedSource{R"({"type":"path","path":)" + json_string(m_path) + "}",
                              "path:" + m_path, Pinning::moving};
    }

private:
    std::string m_path;
};

} // namespace

std::unique_ptr<PackageSource> make_source(const Config& config) {
    switch (config.source) {
    case SourceKind::path:
        return std::make_unique<PathSource>(config.source_location);
    case SourceKind::git:
    case SourceKind::channel:
        break;
    }
    return nullptr;
}

} // namespace nixery
