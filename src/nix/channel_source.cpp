// A Nix channel (NIXERY_CHANNEL): a channel name such as nixos-unstable, or
// a nixpkgs commit, fetched as the tarball NIXERY_CHANNEL_URL/<channel>.tar.gz.
// The tag selects nothing. A commit pins the content for good; a channel
// name moves, so evaluations expire after NIXERY_SOURCE_TTL.
//
// The tarball is fetched into the store once per revision, made a GC root
// (STATE/channels/<hash of the URL>, replaced when the channel moves), and
// evaluations use that store path as a local package set: they never touch
// the network, and all of them see the same nixpkgs until the next fetch.
// The root's own time says when it was fetched, for every worker process: a
// commit's root is used for good, a channel name's until NIXERY_SOURCE_TTL
// has passed. Then a HEAD request asks whether the tarball changed (its
// ETag, or its date and length, against what they were before the last
// fetch): a channel is downloaded once per revision, not once per TTL, and
// its evaluations are kept by store path (PreparedSource::content). One
// fetch at a time per channel (a named lock); the others wait for it and
// use its result.
//
// Its provenance is the fetched store path's NAR hash and the nixpkgs commit:
// the channel's own when it is one, else what the tarball's .git-revision
// says (channels.nixos.org's tarballs have one; GitHub's archives do not).

#include "http/validator.hpp"
#include "nix/nix.hpp"
#include "nix/source.hpp"
#include "util/files.hpp"
#include "util/lock.hpp"
#include "util/log.hpp"
#include "util/sha256.hpp"
#include "util/text.hpp"
#include "util/timestamp.hpp"

#include <chrono>
#include <fcntl.h>
#include <filesystem>
#include <sys/stat.h>

namespace nixery {

namespace {

class ChannelSource final : public PackageSource {
public:
    ChannelSource(const Config& config, const Nix& nix)
        : m_channel(config.source_location),
          m_url(config.channel_url + "/" + m_channel + ".tar.gz"),
          m_shown("Nix channel " + m_channel + " at " + log::without_userinfo(m_url)),
          m_root(config.state_dir / "channels" / sha256_hex(m_url).substr(0, 16)),
          m_ttl(config.source_ttl), m_fetch_limit(config.build_timeout), m_nix(nix),
          m_locks(config.lock_file()) {}

    Result<ResolvedSource, Failure> resolve(std::string_view) override {
        return ResolvedSource{"channel:" + m_url, pinning()};
    }

    Result<PreparedSource, Failure> prepare(const ResolvedSource&) override {
        if (auto path = fetched()) {
            return prepared(*path);
        }
        auto lock = m_locks.acquire("channel:" + m_url,
                                    std::chrono::duration_cast<std::chrono::milliseconds>(
                                        m_fetch_limit + std::chrono::minutes(1)));
        if (!lock) {
            return unexpected(
                fault("fetching " + m_shown + " failed on the server", lock.error().message));
        }
        if (!*lock) {
            return unexpected(source_unavailable(m_shown, "another fetch is taking too long"));
        }
        // Whoever held the lock may have fetched it.
        if (auto path = fetched()) {
            return prepared(*path);
        }
        if (auto made = make_private_dir(m_root.parent_path()); !made) {
            return unexpected(
                fault("fetching " + m_shown + " failed on the server", made.error().message));
        }
        // Asked before the download: should the channel move during it,
        // the next check sees a change and fetches again (never the reverse).
        const auto validator = current_validator();
        if (auto last = fetched(Age::any); last && !validator.empty()) {
            if (const auto before = read_file(validator_file());
                before && *before == validator_record(validator, *last)) {
                (void)::utimensat(AT_FDCWD, m_root.c_str(), nullptr, AT_SYMLINK_NOFOLLOW);
                log::info("channel unchanged", {{"channel", m_channel}, {"path", *last}});
                return prepared(*last);
            }
        }
        auto path = m_nix.fetch_tarball(m_url, m_root, m_fetch_limit);
        if (!path) {
            // NIXERY_CHANNEL_URL may carry a mirror's credentials.
            auto why = log::scrub_userinfo(path.error().log_tail, m_url);
            if (auto last = fetched(Age::any)) {
                // Images keep being served while the channel's host is
                // down; it is asked again after another NIXERY_SOURCE_TTL.
                log::warn("fetching the channel failed; using its last fetch",
                          {{"channel", m_channel}, {"path", *last}, {"error", why}});
                (void)::utimensat(AT_FDCWD, m_root.c_str(), nullptr, AT_SYMLINK_NOFOLLOW);
                return prepared(*last);
            }
            return unexpected(source_unavailable(m_shown, why));
        }
        log::info("channel fetched", {{"channel", m_channel}, {"path", *path}});
        remember_validator(validator, *path);
        return prepared(*path);
    }

private:
    Pinning pinning() const {
        return is_commit_hash(m_channel) ? Pinning::pinned : Pinning::moving;
    }

    enum class Age { trusted, any };
    // The store path of the last fetch, while it is still in the store and,
    // unless `age` is any, to be trusted.
    std::optional<std::string> fetched(Age age = Age::trusted) const {
        struct stat st {};
        if (lstat(m_root.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) {
            return std::nullopt;
        }
        const auto since =
            std::chrono::system_clock::now() - std::chrono::system_clock::from_time_t(st.st_mtime);
        if (age == Age::trusted && pinning() == Pinning::moving && !within_ttl(since, m_ttl)) {
            return std::nullopt;
        }
        std::error_code ec;
        const auto target = std::filesystem::read_symlink(m_root, ec);
        if (ec || !std::filesystem::is_directory(target, ec)) {
            return std::nullopt;
        }
        return target.string();
    }

    std::filesystem::path validator_file() const {
        return m_root.parent_path() / (m_root.filename().string() + ".validator");
    }

    // The validator with the store path it was read before fetching: one
    // left beside a newer root (killed between the two writes) never
    // matches, even should the channel go back to that tarball.
    static std::string validator_record(const std::string& validator, const std::string& path) {
        return validator + "\n" + path + "\n";
    }

    // What identifies the tarball the channel's URL serves now; "" when the
    // server gives nothing to compare or cannot be asked (then it is
    // downloaded, as it would be without this check).
    std::string current_validator() const {
        if (!m_url.starts_with("http://") && !m_url.starts_with("https://")) {
            return {};
        }
        HttpRequest head;
        head.method = "HEAD";
        head.url = m_url;
        head.follow_redirects = true; // GitHub's archives redirect to codeload
        const auto r = m_http.perform(head);
        if (!r || r->status != 200) {
            log::debug("cannot tell whether the channel changed",
                       {{"channel", m_channel},
                        {"status", r ? std::to_string(r->status) : r.error().message}});
            return {};
        }
        return content_validator(*r);
    }

    void remember_validator(const std::string& validator, const std::string& path) const {
        std::error_code ec;
        if (validator.empty()) {
            std::filesystem::remove(validator_file(), ec);
            return;
        }
        if (auto r = write_file_atomic(m_root.parent_path(), validator_file(),
                                       validator_record(validator, path));
            !r) {
            log::warn("keeping the channel's validator failed; it is downloaded again next time",
                      {{"channel", m_channel}, {"error", r.error().message}});
        }
    }

    Result<PreparedSource, Failure> prepared(const std::string& path) const {
        TRY_ASSIGN(auto described, provenance(path));
        return PreparedSource{R"({"type":"path","path":)" + json_string(path) + "}",
                              std::move(described), "store:" + path};
    }

    Result<SourceProvenance, Failure> provenance(const std::string& store_path) const {
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
    std::string m_url;   // may carry credentials: Nix needs them
    std::string m_shown; // without them
    std::filesystem::path m_root;
    std::chrono::seconds m_ttl;
    std::chrono::seconds m_fetch_limit;
    const Nix& m_nix;
    LockTable m_locks;
    mutable HttpClient m_http; // made with the source, before request threads
};

} // namespace

std::unique_ptr<PackageSource> make_channel_source(const Config& config, const Nix& nix) {
    return std::make_unique<ChannelSource>(config, nix);
}

} // namespace nixery
