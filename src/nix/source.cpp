#include "nix/source.hpp"

#include "util/crypto.hpp"
#include "util/files.hpp"
#include "util/log.hpp"
#include "util/subprocess.hpp"
#include "util/text.hpp"

#include <sys/stat.h>

namespace nixery {

namespace {

// A directory on this machine: the tag selects nothing, and the content can
// change at any time, so evaluations expire after NIXERY_SOURCE_TTL.
class PathSource final : public PackageSource {
public:
    PathSource(std::string path, std::chrono::seconds timeout)
        : m_path(std::move(path)), m_timeout(timeout) {}

    Result<ResolvedSource, Failure> resolve(std::string_view) override {
        return ResolvedSource{"path:" + m_path, Pinning::moving};
    }

    Result<PreparedSource, Failure> prepare(const ResolvedSource&) override {
        // Read once per evaluation (a cache hit reads nothing): the content
        // is what the path means, and it may have changed since the last one.
        TRY_ASSIGN(auto hash, directory_nar_hash(m_path, m_timeout, "package set at " + m_path));
        return PreparedSource{R"({"type":"path","path":)" + json_string(m_path) + "}",
                              {"path", m_path, {}, {}, std::move(hash)},
                              {}}; // can change in place
    }

private:
    std::string m_path;
    std::chrono::seconds m_timeout;
};

// Nix's base32 (nix/src/libutil/hash.cc): the last character holds the
// lowest five bits.
constexpr std::string_view k_nix32 = "0123456789abcdfghijklmnpqrsvwxyz";

std::optional<std::string> decode_nix32(std::string_view text, std::size_t bytes) {
    if (text.size() != (bytes * 8 + 4) / 5) {
        return std::nullopt;
    }
    std::string out(bytes, '\0');
    for (std::size_t n = 0; n < text.size(); ++n) {
        const auto digit = k_nix32.find(text[text.size() - n - 1]);
        if (digit == std::string_view::npos) {
            return std::nullopt;
        }
        const auto b = n * 5;
        const auto i = b / 8;
        const auto j = b % 8;
        out[i] = static_cast<char>(static_cast<unsigned char>(out[i]) | ((digit << j) & 0xff));
        const auto carry = digit >> (8 - j);
        if (i + 1 < bytes) {
            out[i + 1] = static_cast<char>(static_cast<unsigned char>(out[i + 1]) | carry);
        } else if (carry != 0) {
            return std::nullopt;
        }
    }
    return out;
}

std::optional<std::string> decode_hex(std::string_view text) {
    if (text.size() % 2 != 0 || !is_lower_hex(text, text.size())) {
        return std::nullopt;
    }
    std::string out;
    for (std::size_t i = 0; i < text.size(); i += 2) {
        out += static_cast<char>(std::stoi(std::string(text.substr(i, 2)), nullptr, 16));
    }
    return out;
}

Result<std::string, Failure> hash_command(std::vector<std::string> argv,
                                          std::chrono::seconds timeout, const std::string& what) {
    ProcessSpec spec;
    spec.argv = std::move(argv);
    spec.timeout = timeout;
    const auto run = run_process(spec);
    if (!run) {
        return unexpected(source_unavailable(what, run.error().message));
    }
    if (!run->ok()) {
        return unexpected(
            source_unavailable(what, "hashing it failed (" + run->describe_exit(timeout) +
                                         "): " + tail_lines(clean_nix_output(run->err_tail), 5)));
    }
    std::string_view out(run->out);
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) {
        out.remove_suffix(1);
    }
    auto hash = sri_hash(out);
    if (hash.empty()) {
        return unexpected(source_unavailable(what, "unexpected hash " + run->out.substr(0, 80)));
    }
    return hash;
}

} // namespace

bool is_commit_hash(std::string_view text) {
    return is_lower_hex(text, 40);
}

std::string sri_hash(std::string_view nix_hash) {
    constexpr std::string_view prefix = "sha256:";
    if (nix_hash.substr(0, 7) == "sha256-" && nix_hash.size() == 7 + 44) {
        return std::string(nix_hash);
    }
    if (nix_hash.substr(0, prefix.size()) == prefix) {
        nix_hash.remove_prefix(prefix.size());
    }
    auto bytes = nix_hash.size() == 64 ? decode_hex(nix_hash) : decode_nix32(nix_hash, 32);
    return bytes ? "sha256-" + base64_encode(*bytes) : std::string();
}

Result<std::string, Failure>
directory_nar_hash(const std::string& path, std::chrono::seconds timeout, const std::string& what) {
    return hash_command({"nix-hash", "--type", "sha256", "--", path}, timeout, what);
}

Result<std::string, Failure> store_path_nar_hash(const std::string& path,
                                                 std::chrono::seconds timeout,
                                                 const std::string& what) {
    return hash_command({"nix-store", "--query", "--hash", "--", path}, timeout, what);
}

namespace {

std::filesystem::path current_source_file(const Config& config) {
    return config.state_dir / "current-source.json";
}

} // namespace

void record_current_source(const Config& config, const SourceProvenance& provenance) {
    if (auto written = write_file_atomic(config.state_dir, current_source_file(config),
                                         provenance_json(provenance));
        !written) {
        log::warn("recording the current package set failed", {{"error", written.error().message}});
    }
}

std::optional<CurrentSource> current_source(const Config& config) {
    const auto file = current_source_file(config);
    auto text = read_file(file);
    struct stat st {};
    if (!text || stat(file.c_str(), &st) != 0) {
        return std::nullopt;
    }
    auto provenance = parse_provenance_json(*text);
    if (provenance.type.empty()) {
        return std::nullopt;
    }
    return CurrentSource{std::move(provenance), static_cast<std::int64_t>(st.st_mtime)};
}

std::unique_ptr<PackageSource> make_path_source(std::string path, std::chrono::seconds timeout) {
    return std::make_unique<PathSource>(std::move(path), timeout);
}

NixSettings nix_settings(const Config& config) {
    return NixSettings{config.data.nix_dir / "image.nix", config.nix_timeout, config.build_timeout,
                       config.nixpkgs_config};
}

std::unique_ptr<PackageSource> make_source(const Config& config, const Nix& nix) {
    switch (config.source) {
    case SourceKind::path:
        return make_path_source(config.source_location, config.nix_timeout);
    case SourceKind::git:
        return make_git_source(config);
    case SourceKind::channel:
        return make_channel_source(config, nix);
    }
    return nullptr;
}

} // namespace nixery
