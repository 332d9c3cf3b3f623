// The instance's configuration: the only place that reads the environment.
// Settings are named as in ../shared/seed/nixery-README.txt; unknown NIXERY_*
// variables and contradictory settings are start-up errors with a message
// that says what to change.
#pragma once

#include "core/layering.hpp"
#include "core/manifest.hpp"
#include "core/platform.hpp"
#include "util/log.hpp"
#include "util/result.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace nixery {

using Environment = std::map<std::string, std::string>;

// A snapshot of the process environment.
Environment current_environment();

enum class SourceKind { path, git, channel };
enum class StorageKind { filesystem, gcs, s3 };
enum class StartPageKind { full, minimal };

// Where the files that ship with the program live: the SQL schema and the
// Nix expressions (installed under share/nixery, or in a source checkout).
struct DataFiles {
    std::filesystem::path sql_dir;
    std::filesystem::path nix_dir;
    std::filesystem::path nginx_dir;
};

struct GcsSettings {
    std::string bucket;
    std::filesystem::path credentials; // GOOGLE_APPLICATION_CREDENTIALS; empty: metadata server
    std::string emulator_host;         // STORAGE_EMULATOR_HOST; empty: Google
    std::string endpoint;              // GCS_ENDPOINT; empty: https://storage.googleapis.com
    std::string metadata_host;         // GCE_METADATA_HOST; empty: metadata.google.internal
};

struct S3Settings {
    std::string bucket;
    std::string endpoint; // empty: AWS
    std::string region = "us-east-1";
    bool path_style = false;
    std::string access_key_id;
    std::string secret_access_key;
    std::string session_token;
};

struct Config {
    int port = 8080;

    SourceKind source = SourceKind::path;
    std::string source_location; // a path, a git URL, or a channel name / commit
    bool demo_source = false;    // no source configured: the shipped demo set
    // HOME and XDG_CACHE_HOME, which Nix's messages may name: private.
    std::string home_dir;
    std::string cache_home;
    std::string channel_url = "https://github.com/NixOS/nixpkgs/archive";
    std::chrono::seconds source_ttl{300};
    // NIXERY_TAG_CACHE_SECONDS: how long nginx may answer a manifest by a
    // tag that can move without asking the pool (at most 60); unset (-1):
    // each source's safe default (registry.cpp, manifest_cache_time()).
    std::chrono::seconds tag_cache{-1};
    // How long a git source trusts its last ls-remote, and how long after a
    // fetch an unknown commit is refused without fetching again: a flood of
    // made-up refs costs one upstream call per interval.
    std::chrono::seconds git_refs_ttl{10};
    // Manifest requests a client address may make a second (0: no limit),
    // and the burst answered at once (nginx's limit_req).
    int manifest_rate = 20;
    int manifest_burst = 100;

    StorageKind storage = StorageKind::filesystem;
    std::filesystem::path storage_path;
    GcsSettings gcs;
    S3Settings s3;

    std::filesystem::path state_dir;
    std::chrono::seconds nix_timeout{60};     // each builder, each evaluation
    std::chrono::seconds build_timeout{1800}; // a whole image build (NIXERY_BUILD_TIMEOUT)
    std::filesystem::path nixpkgs_config;     // NIXERY_NIXPKGS_CONFIG; empty: none
    std::string popularity_url;
    LayeringStrategy layering = LayeringStrategy::automatic; // NIXERY_LAYERING
    int workers = 2;
    // Layers of OCI-format manifests; Docker-format manifests always get gzip.
    LayerCompression layer_compression = LayerCompression::gzip;
    // NIXERY_PLATFORMS: what an image name without "arm64/" is built for;
    // with more than one, a manifest by tag is an index of one per platform.
    std::vector<Arch> platforms{host_arch()};
    // A manifest request whose image is not ready by then gets its status
    // line and headers, and its body when the build ends (builder/jobs.hpp).
    std::chrono::seconds header_deadline{20};
    int max_builds = 2;         // image builds at once, across the worker pool
    int max_queued_builds = 64; // builds waiting for a slot; past that, 429
    int gc_keep_days = 30;      // nixery gc's default retention
    // NIXERY_NIX_GC: nixery gc deletes the store paths no kept image needs.
    bool nix_gc = false;
    log::Level log_level = log::Level::info;
    // NIXERY_START_PAGE=minimal: the start page shows the instructions only,
    // not the recent images and build errors of other users.
    StartPageKind start_page = StartPageKind::full;
    DataFiles data;

    std::filesystem::path database() const { return state_dir / "nixery.sqlite"; }
    std::filesystem::path socket() const { return state_dir / "fcgi.sock"; }
    std::filesystem::path locks() const { return state_dir / "locks"; }
    // The LockTable every process of the instance (and `nixery gc`) shares.
    std::filesystem::path lock_file() const { return locks() / "builds.lock"; }
    // The package source as anonymous clients may read it: no credentials,
    // no path of this server.
    std::string describe_source() const;
    // A git source in this server's file system (a path, file://).
    bool git_source_is_local() const;
    // How long nginx waits for a worker's answer (fastcgi_read_timeout): a
    // whole build (NIXERY_BUILD_TIMEOUT: fetching the source, evaluating,
    // building, downloading) plus ten minutes of packing. A worker stops
    // waiting for another request's build or packing a minute before it
    // (builder.cpp), so the client hears the worker's answer rather than
    // nginx's timeout.
    std::chrono::seconds request_timeout() const {
        return build_timeout + std::chrono::minutes(10);
    }
    // How long `nixery serve` waits, after SIGTERM, for its workers to end
    // the builds they run (a job runs to its end) before it kills them: a
    // whole build (NIXERY_BUILD_TIMEOUT) plus two minutes of packing and
    // recording, but at most k_max_drain, so the pool stops by itself
    // before systemd's TimeoutStopSec (20 min) kills it without a word.
    static constexpr std::chrono::seconds k_max_drain{std::chrono::minutes(18)};
    std::chrono::seconds drain_timeout() const {
        return std::min<std::chrono::seconds>(build_timeout + std::chrono::minutes(2), k_max_drain);
    }
};

// Every variable the program reads, with a one-line description.
const std::map<std::string, std::string>& known_settings();

enum class ConfigUse {
    serve, // everything must be valid
    tool,  // a command-line tool: only what it reads
};

Result<Config> load_config(const Environment& env, ConfigUse use = ConfigUse::serve);

// What a build may need in memory at its peak: a Nix evaluation of nixpkgs
// takes several hundred MB to 1 GiB, and the rest of the build little.
inline constexpr std::uint64_t k_memory_per_build = 3ULL << 29; // 1.5 GiB
// NIXERY_MAX_BUILDS's default: one build per core, but no more than the
// memory holds (one build at least), so that a few cold pulls at once do not
// run a small machine out of memory.
long default_max_builds(long cores, std::uint64_t memory_bytes);

// The memory limit of this process's cgroup (v2), from the text of
// /proc/self/cgroup and `read` of the cgroup's memory.max; nullopt when
// there is none ("max", cgroup v1, nothing readable).
using CgroupFileReader = std::function<std::optional<std::string>(const std::string& path)>;
std::optional<std::uint64_t> cgroup_memory_limit(std::string_view proc_self_cgroup,
                                                 const CgroupFileReader& read);

// DataFiles next to the running executable, or an error saying where it looked.
Result<DataFiles> locate_data_files();

} // namespace nixery
