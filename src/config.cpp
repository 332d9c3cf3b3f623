#include "config.hpp"

#include "core/provenance.hpp"
#include "util/files.hpp"
#include "util/text.hpp"

#include <algorithm>
#include <climits>
#include <limits>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace nixery {

namespace fs = std::filesystem;

Environment current_environment() {
    Environment env;
    for (char** e = environ; *e != nullptr; ++e) {
        std::string_view entry(*e);
        const auto eq = entry.find('=');
        if (eq != std::string_view::npos) {
            env.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
        }
    }
    return env;
}

const std::map<std::string, std::string>& known_settings() {
    static const std::map<std::string, std::string> k{
        {"PORT", "HTTP port nginx listens on (make run; default 8080)"},
        {"NIXERY_CHANNEL", "a Nix/NixOS channel name or nixpkgs commit to build from"},
        {"NIXERY_CHANNEL_URL",
         "URL prefix of channel tarballs (default the nixpkgs archive on GitHub)"},
        {"NIXERY_PKGS_REPO", "a git repository with a package set; image tags are git refs"},
        {"NIXERY_PKGS_PATH", "a local directory with a package set"},
        {"NIXERY_GIT_REFS_TTL",
         "seconds a git repository's refs, and a fetch that did not find a commit, are "
         "remembered (default 10)"},
        {"NIXERY_MANIFEST_RATE",
         "manifest requests per second a client address may make (default 20, 0: no limit)"},
        {"NIXERY_MANIFEST_BURST",
         "manifest requests beyond the rate answered at once (default 100)"},
        {"NIXERY_SOURCE_TTL", "seconds an evaluation of a moving source is trusted (default 300)"},
        {"NIXERY_TAG_CACHE_SECONDS",
         "seconds nginx may answer a manifest by a tag that can move without asking the pool "
         "(0 to 60; default per source)"},
        {"NIXERY_STORAGE_BACKEND", "filesystem (default), gcs or s3"},
        {"STORAGE_PATH", "directory for blobs (filesystem backend)"},
        {"GCS_BUCKET", "Google Cloud Storage bucket (gcs backend)"},
        {"GOOGLE_APPLICATION_CREDENTIALS", "service-account key for GCS (optional)"},
        {"STORAGE_EMULATOR_HOST", "another GCS endpoint, without authentication (optional)"},
        {"GCS_ENDPOINT",
         "GCS JSON API endpoint, authenticated (default https://storage.googleapis.com)"},
        {"GCE_METADATA_HOST",
         "host[:port] of the GCE metadata server (default metadata.google.internal)"},
        {"S3_BUCKET", "S3 bucket (s3 backend)"},
        {"S3_ENDPOINT", "S3-compatible endpoint URL (empty: AWS)"},
        {"S3_REGION", "S3 region (default us-east-1)"},
        {"S3_PATH_STYLE", "true for path-style bucket addressing"},
        {"AWS_ACCESS_KEY_ID", "S3 access key"},
        {"AWS_SECRET_ACCESS_KEY", "S3 secret key"},
        {"AWS_SESSION_TOKEN", "S3 session token (optional)"},
        {"NIXERY_STATE_DIR", "directory for the database, sockets, locks and logs"},
        {"NIX_TIMEOUT", "seconds each Nix builder and each evaluation may run (default 60)"},
        {"NIXERY_BUILD_TIMEOUT", "seconds a whole image build may take (default 1800)"},
        {"NIXERY_NIXPKGS_CONFIG",
         "a Nix file with the nixpkgs config (allowUnfree, permittedInsecurePackages, ...)"},
        {"NIXERY_NIX_GC",
         "true: nixery gc also deletes from the Nix store the paths no kept image needs "
         "(default false)"},
        {"NIXERY_START_PAGE",
         "full (default: recent builds and errors) or minimal (instructions only)"},
        {"NIX_POPULARITY_URL", "URL (http, https or file) of popularity data for layering"},
        {"NIXERY_LAYERING",
         "layering strategy: auto (default: popularity with NIX_POPULARITY_URL, size "
         "without), popularity or size"},
        {"NIXERY_WORKERS", "number of FastCGI worker processes (default 2)"},
        {"NIXERY_HEADER_DEADLINE",
         "seconds after which a manifest request waiting for a build gets its headers (default "
         "20)"},
        {"NIXERY_MAX_BUILDS", "image builds running at once (default: the number of cores, "
                              "at most one per 1.5 GiB of memory)"},
        {"NIXERY_MAX_QUEUED_BUILDS",
         "image builds waiting for a slot before new ones are refused (default 64)"},
        {"NIXERY_LOG_LEVEL", "debug, info (default), warn or error"},
        {"NIXERY_LAYER_COMPRESSION",
         "gzip (default) or zstd: layers of OCI-format manifests (Docker-format ones keep gzip)"},
        {"NIXERY_PLATFORMS",
         "platforms images are built for, comma-separated (linux/amd64, linux/arm64; default: "
         "the host's); more than one: manifests by tag are image indexes"},
        {"NIXERY_GC_KEEP_DAYS",
         "days nixery gc keeps the blobs of images nobody pulled (default 30)"},
    };
    return k;
}

bool Config::git_source_is_local() const {
    return is_local_location(source_location);
}

std::string Config::describe_source() const {
    switch (source) {
    case SourceKind::path:
        // Shown to anonymous clients: no server path.
        return demo_source ? "the demo package set" : "a local package set";
    case SourceKind::git:
        // Shown on the start page and in errors: never a token in the URL,
        // nor a repository's path on this server.
        if (git_source_is_local()) {
            return "a local git repository";
        }
        return "the git repository " + log::without_userinfo(source_location);
    case SourceKind::channel:
        return "the Nix channel " + source_location;
    }
    return source_location;
}

Result<DataFiles> locate_data_files() {
    char buf[PATH_MAX];
    const auto n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) {
        return fail("readlink \"/proc/self/exe\" failed");
    }
    const fs::path exe_dir = fs::path(std::string(buf, static_cast<std::size_t>(n))).parent_path();
    // Installed: PREFIX/bin/nixery with PREFIX/share/nixery. In a checkout the
    // binary is under build/ (or a subdirectory of it, like build/check/).
    const auto installed = exe_dir.parent_path() / "share" / "nixery";
    if (fs::exists(installed / "nix" / "image.nix")) {
        return DataFiles{installed / "sql", installed / "nix", installed / "nginx"};
    }
    for (auto dir = exe_dir.parent_path(); dir.has_relative_path(); dir = dir.parent_path()) {
        if (fs::exists(dir / "src" / "nix" / "image.nix")) {
            return DataFiles{dir / "sql", dir / "src" / "nix", dir / "nginx"};
        }
    }
    return fail("cannot find nixery's data files: looked in \"" + installed.string() +
                "\" and for a source checkout above \"" + exe_dir.string() + "\"");
}

namespace {

std::string get(const Environment& env, const std::string& name) {
    const auto it = env.find(name);
    return it == env.end() ? std::string() : it->second;
}

Result<long> parse_number(const Environment& env, const std::string& name, long fallback, long min,
                          long max) {
    const auto text = get(env, name);
    if (text.empty()) {
        return fallback;
    }
    // Every setting's range starts at 0 or above: digits alone.
    const auto value = parse_decimal(text, static_cast<std::uint64_t>(std::max(max, 0L)));
    if (!value || static_cast<long>(*value) < min) {
        return fail(name + "=\"" + text + "\" is not a whole number from " + std::to_string(min) +
                    " to " + std::to_string(max));
    }
    return static_cast<long>(*value);
}

// A value that is no scheme:// URL may still hold user info
// ("user:token@host/...", "https//user:token@host"): nothing before its
// last '@' is shown.
std::string without_any_userinfo(const std::string& value) {
    const auto at = value.rfind('@');
    return at == std::string::npos ? value : "…@" + value.substr(at + 1);
}

Result<fs::path> absolute_dir(const std::string& name, const std::string& value) {
    if (value.empty()) {
        return fail(name + " is not set");
    }
    std::error_code ec;
    auto p = fs::absolute(value, ec);
    if (ec) {
        return fail(name + "=\"" + value + "\": " + ec.message());
    }
    return p.lexically_normal();
}

// A bucket's name alone: "gs://b", "s3://b" or "b/" would be sent to the
// store as part of the name, and refused with a message about listing.
Result<std::string> bucket_name(const std::string& name, const std::string& value) {
    if (value.find('/') == std::string::npos &&
        value.find_first_of(" \t\r\n") == std::string::npos) {
        return value;
    }
    auto bare = value;
    if (const auto scheme = bare.find("://"); scheme != std::string::npos) {
        bare = bare.substr(scheme + 3);
    }
    bare = bare.substr(bare.rfind('@') + 1); // never echo credentials (a secret may hold '/')
    bare = bare.substr(0, bare.find('/'));
    return fail(name + "=\"" + without_any_userinfo(value) +
                "\" is not a bucket name: give the name alone" +
                (bare.empty() || bare == value ? "" : " (" + bare + ")"));
}

} // namespace

std::optional<std::uint64_t> cgroup_memory_limit(std::string_view proc_self_cgroup,
                                                 const CgroupFileReader& read) {
    // cgroup v2: the one line "0::/system.slice/nixery.service".
    for (const auto line : split_nonempty(proc_self_cgroup)) {
        if (!line.starts_with("0::")) {
            continue;
        }
        auto dir = std::string(line.substr(3));
        if (dir == "/") {
            dir.clear();
        }
        const auto text = read("/sys/fs/cgroup" + dir + "/memory.max");
        if (!text) {
            return std::nullopt;
        }
        // "max" (no limit) is no number.
        return parse_decimal(trim_blanks(*text), std::numeric_limits<std::uint64_t>::max());
    }
    return std::nullopt;
}

long default_max_builds(long cores, std::uint64_t memory_bytes) {
    const auto memory_allows =
        static_cast<long>(std::min<std::uint64_t>(memory_bytes / k_memory_per_build, LONG_MAX));
    return std::max(1L, std::min(cores, memory_allows));
}

namespace {

// A NIXERY_ name this version does not know is a typo or a setting of
// another version: refused, naming the known ones.
Result<void> check_known_settings(const Environment& env) {
    for (const auto& [name, value] : env) {
        if (name.rfind("NIXERY_", 0) == 0 && known_settings().count(name) == 0) {
            std::string known;
            for (const auto& [setting, what] : known_settings()) {
                if (setting.rfind("NIXERY_", 0) == 0) {
                    known += (known.empty() ? "" : ", ") + setting;
                }
            }
            return fail(
                "unknown setting " + name +
                (name == "NIXERY_POPULARITY_URL" ? " (did you mean NIX_POPULARITY_URL?)" : "") +
                ": the NIXERY_ settings are " + known + " (see README.md)");
        }
    }
    return {};
}

// The memory this process may use: the machine's, or less under a cgroup
// limit (systemd's MemoryMax=, docker run --memory).
std::uint64_t usable_memory() {
    auto memory = static_cast<std::uint64_t>(std::max(0L, sysconf(_SC_PHYS_PAGES))) *
                  static_cast<std::uint64_t>(std::max(0L, sysconf(_SC_PAGE_SIZE)));
    if (const auto cgroup = read_file("/proc/self/cgroup")) {
        const auto read = [](const std::string& path) -> std::optional<std::string> {
            auto text = read_file(path);
            return text ? std::optional<std::string>(std::move(*text)) : std::nullopt;
        };
        if (const auto limit = cgroup_memory_limit(*cgroup, read)) {
            memory = std::min(memory, *limit);
        }
    }
    return memory;
}

// Numbers: ports, times, rates and counts, each within its range.
Result<void> read_limits(const Environment& env, Config& c) {
    TRY_ASSIGN(const long port, parse_number(env, "PORT", 8080, 1, 65535));
    c.port = static_cast<int>(port);
    TRY_ASSIGN(const long timeout, parse_number(env, "NIX_TIMEOUT", 60, 1, 86400));
    c.nix_timeout = std::chrono::seconds(timeout);
    TRY_ASSIGN(const long build_timeout,
               parse_number(env, "NIXERY_BUILD_TIMEOUT", 1800, 1, 86400 * 7));
    c.build_timeout = std::chrono::seconds(build_timeout);
    TRY_ASSIGN(const long ttl, parse_number(env, "NIXERY_SOURCE_TTL", 300, 0, 86400 * 365));
    c.source_ttl = std::chrono::seconds(ttl);
    TRY_ASSIGN(const long tag_cache, parse_number(env, "NIXERY_TAG_CACHE_SECONDS", -1, 0, 60));
    c.tag_cache = std::chrono::seconds(tag_cache);
    TRY_ASSIGN(const long ref_ttl, parse_number(env, "NIXERY_GIT_REFS_TTL", 10, 0, 3600));
    c.git_refs_ttl = std::chrono::seconds(ref_ttl);
    TRY_ASSIGN(const long rate, parse_number(env, "NIXERY_MANIFEST_RATE", 20, 0, 100000));
    c.manifest_rate = static_cast<int>(rate);
    TRY_ASSIGN(const long burst, parse_number(env, "NIXERY_MANIFEST_BURST", 100, 0, 100000));
    c.manifest_burst = static_cast<int>(burst);
    TRY_ASSIGN(const long workers, parse_number(env, "NIXERY_WORKERS", 2, 1, 256));
    c.workers = static_cast<int>(workers);
    TRY_ASSIGN(const long header_deadline,
               parse_number(env, "NIXERY_HEADER_DEADLINE", 20, 1, 3600));
    c.header_deadline = std::chrono::seconds(header_deadline);
    TRY_ASSIGN(
        const long max_builds,
        parse_number(env, "NIXERY_MAX_BUILDS",
                     default_max_builds(static_cast<long>(std::thread::hardware_concurrency()),
                                        usable_memory()),
                     1, 1024));
    c.max_builds = static_cast<int>(max_builds);
    TRY_ASSIGN(const long max_queued, parse_number(env, "NIXERY_MAX_QUEUED_BUILDS", 64, 0, 4096));
    c.max_queued_builds = static_cast<int>(max_queued);
    TRY_ASSIGN(const long keep_days, parse_number(env, "NIXERY_GC_KEEP_DAYS", 30, 0, 36500));
    c.gc_keep_days = static_cast<int>(keep_days);
    return {};
}

// Choices among named values, and the settings they depend on.
Result<void> read_choices(const Environment& env, Config& c) {
    if (const auto level = get(env, "NIXERY_LOG_LEVEL"); !level.empty()) {
        if (!log::parse_level(level, c.log_level)) {
            return fail("NIXERY_LOG_LEVEL=\"" + level +
                        "\" is not one of debug, info, warn, error");
        }
    }
    if (const auto nix_gc = get(env, "NIXERY_NIX_GC"); nix_gc == "true" || nix_gc == "1") {
        c.nix_gc = true;
    } else if (!nix_gc.empty() && nix_gc != "false" && nix_gc != "0") {
        return fail("NIXERY_NIX_GC=\"" + nix_gc + "\" is not one of true, false");
    }
    if (const auto page = get(env, "NIXERY_START_PAGE"); page == "minimal") {
        c.start_page = StartPageKind::minimal;
    } else if (!page.empty() && page != "full") {
        return fail("NIXERY_START_PAGE=\"" + page + "\" is not one of full, minimal");
    }
    if (const auto compression = get(env, "NIXERY_LAYER_COMPRESSION"); compression == "zstd") {
        c.layer_compression = LayerCompression::zstd;
    } else if (!compression.empty() && compression != "gzip") {
        return fail("NIXERY_LAYER_COMPRESSION=\"" + compression + "\" is not one of gzip, zstd");
    }
    if (const auto platforms = get(env, "NIXERY_PLATFORMS"); !platforms.empty()) {
        TRY_ASSIGN(c.platforms, parse_platforms(platforms));
    }
    c.popularity_url = get(env, "NIX_POPULARITY_URL");
    if (!c.popularity_url.empty() && c.popularity_url.find("://") == std::string::npos) {
        return fail("NIX_POPULARITY_URL=\"" + without_any_userinfo(c.popularity_url) +
                    "\" is not a URL: use http://, https:// or file:// (a file: file:///abs/path)");
    }
    if (const auto layering = get(env, "NIXERY_LAYERING"); !layering.empty()) {
        const auto strategy = parse_layering_strategy(layering);
        if (!strategy) {
            return fail("NIXERY_LAYERING=\"" + layering +
                        "\" is not one of auto, popularity, size");
        }
        if (*strategy == LayeringStrategy::popularity && c.popularity_url.empty()) {
            return fail("NIXERY_LAYERING=popularity needs popularity data: set NIX_POPULARITY_URL "
                        "(see nixery popcount), or NIXERY_LAYERING=auto");
        }
        c.layering = *strategy;
    }
    c.home_dir = get(env, "HOME");
    c.cache_home = get(env, "XDG_CACHE_HOME");
    if (const auto url = get(env, "NIXERY_CHANNEL_URL"); !url.empty()) {
        c.channel_url = url;
        while (!c.channel_url.empty() && c.channel_url.back() == '/') {
            c.channel_url.pop_back();
        }
        // Without a scheme, Nix would take it for a host name or a path
        // ("/" would fetch "/nixos-unstable.tar.gz"): every pull would fail.
        const auto scheme = c.channel_url.find("://");
        if (scheme == std::string::npos || scheme == 0 || scheme + 3 == c.channel_url.size()) {
            return fail("NIXERY_CHANNEL_URL=\"" + without_any_userinfo(url) +
                        "\" is not a URL: use http://, https:// or file:// (a mirror's "
                        "directory the NAME.tar.gz tarballs are under)");
        }
    }
    return {};
}

// The package source: exactly one, or none for the demo set.
Result<void> read_source(const Environment& env, Config& c) {
    const auto channel = get(env, "NIXERY_CHANNEL");
    const auto repo = get(env, "NIXERY_PKGS_REPO");
    const auto path = get(env, "NIXERY_PKGS_PATH");
    const int sources = !channel.empty() + !repo.empty() + !path.empty();
    if (sources > 1) {
        return fail("more than one package source is set: set exactly one of NIXERY_CHANNEL, "
                    "NIXERY_PKGS_REPO and NIXERY_PKGS_PATH");
    }
    if (!channel.empty()) {
        // A name or commit, appended to NIXERY_CHANNEL_URL: not a URL, whose
        // credentials would be shown as the source's name.
        if (channel.find_first_of("?#%:@ \t\r\n") != std::string::npos || channel.front() == '/' ||
            channel.back() == '/') {
            return fail("NIXERY_CHANNEL=\"" + without_any_userinfo(log::strip_userinfo(channel)) +
                        "\" is not a channel name or nixpkgs commit (like nixos-unstable): for "
                        "a mirror, set NIXERY_CHANNEL_URL to the URL its tarballs "
                        "(NAME.tar.gz) are under");
        }
        c.source = SourceKind::channel;
        c.source_location = channel;
    } else if (!repo.empty()) {
        c.source = SourceKind::git;
        c.source_location = repo;
        // git runs in the mirror's directory: a relative path ("./pkgs",
        // "srv/pkgs") must not be.
        if (repo.find("://") == std::string::npos && is_local_location(repo) &&
            !fs::path(repo).is_absolute()) {
            TRY_ASSIGN(const auto dir, absolute_dir("NIXERY_PKGS_REPO", repo));
            c.source_location = dir.string();
        }
    } else if (!path.empty()) {
        TRY_ASSIGN(const auto dir, absolute_dir("NIXERY_PKGS_PATH", path));
        if (!fs::exists(dir)) {
            return fail("NIXERY_PKGS_PATH=\"" + path + "\" does not exist");
        }
        c.source = SourceKind::path;
        c.source_location = dir.string();
    } else {
        c.source = SourceKind::path;
        c.demo_source = true;
        c.source_location = (c.data.nix_dir / "demo").string();
    }
    if (const auto file = get(env, "NIXERY_NIXPKGS_CONFIG"); !file.empty()) {
        TRY_ASSIGN(c.nixpkgs_config, absolute_dir("NIXERY_NIXPKGS_CONFIG", file));
        if (!fs::is_regular_file(c.nixpkgs_config)) {
            return fail("NIXERY_NIXPKGS_CONFIG=\"" + file + "\" is not a file");
        }
    }
    return {};
}

// The bucket an object store backend (`backend`: gcs, s3) keeps blobs in,
// from `setting`; STORAGE_PATH, the filesystem backend's, is a mistake.
Result<std::string> read_bucket(const Environment& env, const std::string& backend,
                                const std::string& setting) {
    if (!get(env, "STORAGE_PATH").empty()) {
        return fail("STORAGE_PATH is set but NIXERY_STORAGE_BACKEND is \"" + backend +
                    "\": blobs live in " + setting);
    }
    const auto bucket = get(env, setting);
    if (bucket.empty()) {
        return fail("NIXERY_STORAGE_BACKEND is \"" + backend + "\" but " + setting + " is not set");
    }
    return bucket_name(setting, bucket);
}

Result<void> read_gcs(const Environment& env, Config& c) {
    TRY_ASSIGN(c.gcs.bucket, read_bucket(env, "gcs", "GCS_BUCKET"));
    c.gcs.credentials = get(env, "GOOGLE_APPLICATION_CREDENTIALS");
    c.gcs.emulator_host = get(env, "STORAGE_EMULATOR_HOST");
    c.gcs.endpoint = get(env, "GCS_ENDPOINT");
    if (c.gcs.endpoint.find("/storage/v1") != std::string::npos) {
        return fail("GCS_ENDPOINT=\"" + without_any_userinfo(c.gcs.endpoint) +
                    "\" has the API's path: give the scheme and host alone, which "
                    "/storage/v1 and /upload/storage/v1 are added to");
    }
    c.gcs.metadata_host = get(env, "GCE_METADATA_HOST");
    // Put after "http://" as it is, like Google's libraries do: a URL there
    // would ask "http://http://…" for every token.
    if (c.gcs.metadata_host.find_first_of("/@?# \t\r\n") != std::string::npos) {
        return fail("GCE_METADATA_HOST=\"" + without_any_userinfo(c.gcs.metadata_host) +
                    "\" is not a host[:port] (like 169.254.169.254 or metadata.google.internal)");
    }
    if (!c.gcs.emulator_host.empty() && !c.gcs.endpoint.empty()) {
        return fail("STORAGE_EMULATOR_HOST and GCS_ENDPOINT are both set: set one (the "
                    "emulator is used without authentication, GCS_ENDPOINT with it)");
    }
    return {};
}

Result<void> read_s3(const Environment& env, Config& c) {
    TRY_ASSIGN(c.s3.bucket, read_bucket(env, "s3", "S3_BUCKET"));
    c.s3.endpoint = get(env, "S3_ENDPOINT");
    if (const auto region = get(env, "S3_REGION"); !region.empty()) {
        // It goes into the signatures' scope (REGION/s3/aws4_request) and,
        // without S3_ENDPOINT, into AWS's host name: a '/', a space or a
        // dot there would break them, and be reported as another setting's.
        if (region.size() > 64 ||
            region.find_first_not_of("abcdefghijklmnopqrstuvwxyz"
                                     "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") !=
                std::string::npos) {
            return fail("S3_REGION=\"" + region.substr(0, 64) +
                        "\" is not a region name: letters, digits, - and _, like us-east-1 "
                        "(AWS), auto (R2) or garage (Garage), as the store names it");
        }
        c.s3.region = region;
    }
    const auto style = get(env, "S3_PATH_STYLE");
    if (!style.empty() && style != "true" && style != "false") {
        return fail("S3_PATH_STYLE=\"" + style + "\" is not true or false");
    }
    c.s3.path_style = style == "true";
    c.s3.access_key_id = get(env, "AWS_ACCESS_KEY_ID");
    c.s3.secret_access_key = get(env, "AWS_SECRET_ACCESS_KEY");
    c.s3.session_token = get(env, "AWS_SESSION_TOKEN");
    if (c.s3.access_key_id.empty() != c.s3.secret_access_key.empty()) {
        return fail("set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither");
    }
    return {};
}

// The storage backend and its settings; settings of another backend are a
// contradiction, not something to ignore silently.
Result<void> read_storage(const Environment& env, ConfigUse use, Config& c) {
    const auto backend = get(env, "NIXERY_STORAGE_BACKEND");
    const bool gcs_set = !get(env, "GCS_BUCKET").empty();
    const bool s3_set = !get(env, "S3_BUCKET").empty();
    if (backend.empty() || backend == "filesystem") {
        c.storage = StorageKind::filesystem;
    } else if (backend == "gcs") {
        c.storage = StorageKind::gcs;
    } else if (backend == "s3") {
        c.storage = StorageKind::s3;
    } else {
        return fail("NIXERY_STORAGE_BACKEND=\"" + backend + "\" is not one of filesystem, gcs, s3");
    }
    if (gcs_set && c.storage != StorageKind::gcs) {
        return fail("GCS_BUCKET is set but NIXERY_STORAGE_BACKEND is not \"gcs\"");
    }
    if (s3_set && c.storage != StorageKind::s3) {
        return fail("S3_BUCKET is set but NIXERY_STORAGE_BACKEND is not \"s3\"");
    }
    switch (c.storage) {
    case StorageKind::filesystem:
        if (use == ConfigUse::serve || !get(env, "STORAGE_PATH").empty()) {
            if (get(env, "STORAGE_PATH").empty()) {
                return fail("STORAGE_PATH is not set: set it to the directory blobs are stored "
                            "in, or NIXERY_STORAGE_BACKEND to gcs or s3");
            }
            TRY_ASSIGN(c.storage_path, absolute_dir("STORAGE_PATH", get(env, "STORAGE_PATH")));
        }
        break;
    case StorageKind::gcs:
        return read_gcs(env, c);
    case StorageKind::s3:
        return read_s3(env, c);
    }
    return {};
}

} // namespace

Result<Config> load_config(const Environment& env, ConfigUse use) {
    TRY(check_known_settings(env));
    Config c;
    TRY(read_limits(env, c));
    TRY(read_choices(env, c));
    TRY_ASSIGN(c.data, locate_data_files());
    TRY(read_source(env, c));
    TRY(read_storage(env, use, c));
    if (use == ConfigUse::serve || !get(env, "NIXERY_STATE_DIR").empty()) {
        if (get(env, "NIXERY_STATE_DIR").empty()) {
            return fail("NIXERY_STATE_DIR is not set: set it to a directory for the database, "
                        "sockets, locks and logs (/var/lib/nixery as the systemd unit does)");
        }
        TRY_ASSIGN(c.state_dir, absolute_dir("NIXERY_STATE_DIR", get(env, "NIXERY_STATE_DIR")));
    }
    return c;
}

} // namespace nixery
