// A Nix channel (NIXERY_CHANNEL): a channel name such as nixos-unstable, or
// a nixpkgs commit, fetched by Nix as the tarball
// NIXERY_CHANNEL_URL/<channel>.tar.gz. The tag selects nothing. A commit
// pins the content for good; a channel name moves, so evaluations expire
// after NIXERY_SOURCE_TTL (and Nix's tarball cache with them, see nix.cpp).
// Its provenance is the fetched store path's NAR hash and the nixpkgs commit:
// the channel's own when it is one, else what the tarball's .git-revision
// says (channels.nixos.org's tarballs have one; GitHub's archives do not).

#include "nix/nix.hpp"
#include "nix/source.hpp"
#include "util/files.hpp"
#include "util/log.hpp"
#include "util/text.hpp"

namespace nixery {

namespace {

class ChannelSource final : public PackageSource {
public:
    ChannelSource(const Config& config, const Nix& nix)
        : m_channel(config.source_location),
          m_url(config.channel_url + "/" + m_channel + ".tar.gz"), m_nix(nix) {}

    Result<ResolvedSource, RegistryError> resolve(std::string_view) override {
        return ResolvedSource{"channel:" + m_url,
                              is_commit_hash(m_channel) ? Pinning::pinned : Pinning::moving};
    }

    Result<PreparedSource, RegistryError> prepare(const ResolvedSource&) override {
        auto source = R"({"type":"tarball","url":)" + json_string(m_url) + "}";
        // Fetch it on its own first, so a failure is blamed on the channel
        // and not on the packages.
        auto fetched = m_nix.source_path(request_json({source, Arch::amd64, {}}));
        if (!fetched) {
            // NIXERY_CHANNEL_URL may carry a mirror's credentials.
            return unexpected(source_unavailable(
                "Nix channel " + m_channel + " at " + log::without_userinfo(m_url),
                log::scrub_userinfo(fetched.error().log_tail, m_url)));
        }
        TRY_ASSIGN(auto described, provenance(*fetched));
        return PreparedSource{source, std::move(described)};
    }

private:
    Result<SourceProvenance, RegistryError> provenance(const std::string& store_path) const {
        SourceProvenance p{"channel", url_without_credentials(m_url), m_channel, {}, {}};
        if (is_commit_hash(m_channel)) {
            p.revision = m_channel;
        } else if (auto text = read_file(std::filesystem::path(store_path) / ".git-revision")) {
            const auto line = split_nonempty(*text);
            if (!line.empty() && is_commit_hash(line.front())) {
                p.revision = std::string(line.front());
            }
        }
        TRY_ASSIGN(p.hash, store_path_nar_hash(store_path, m_nix.timeout(),
                                               "Nix channel " + m_channel + " at " + p.location));
        return p;
    }

    std::string m_channel;
    std::string m_url;
    const Nix& m_nix;
};

} // namespace

std::unique_ptr<PackageSource> make_channel_source(const Config& config, const Nix& nix) {
    return std::make_unique<ChannelSource>(config, nix);
}

} // namespace nixery
