#include "config.hpp"
#include "testutil.hpp"

#include <doctest/doctest.h>

using namespace nixery;

namespace {

Environment base() {
    return {{"STORAGE_PATH", "/tmp/s"}, {"NIXERY_STATE_DIR", "/tmp/st"}};
}

std::string error_of(Environment env) {
    auto c = load_config(env);
    return c ? std::string() : c.error().message;
}

} // namespace

TEST_SUITE_BEGIN("config");

TEST_CASE("load_config") {
    SUBCASE("defaults: the demo package set, filesystem storage") {
        auto c = load_config(base());
        REQUIRE_MESSAGE(c, error_of(base()));
        CHECK(c->demo_source);
        CHECK(c->storage == StorageKind::filesystem);
        CHECK(c->nix_timeout == std::chrono::seconds(60));
        CHECK(c->build_timeout == std::chrono::seconds(1800));
        CHECK(c->nixpkgs_config.empty());
        CHECK(c->port == 8080);
        CHECK(c->storage_path == "/tmp/s");
        CHECK(c->gc_keep_days == 30);
    }
    SUBCASE("a git URL's credentials are not part of its description") {
        auto env = base();
        env["NIXERY_PKGS_REPO"] = "https://ci:glpat-secret@git.example.com/pkgs.git";
        auto c = load_config(env);
        REQUIRE(c);
        CHECK(c->describe_source() == "the git repository https://git.example.com/pkgs.git");
        CHECK(c->source_location == env["NIXERY_PKGS_REPO"]); // git still gets them
    }
    SUBCASE("a repository on this server is described without its path") {
        for (const char* repo : {"/srv/git/pkgs", "file:///srv/git/pkgs"}) {
            auto env = base();
            env["NIXERY_PKGS_REPO"] = repo;
            auto c = load_config(env);
            REQUIRE(c);
            CHECK(c->describe_source() == "a local git repository");
        }
    }
    SUBCASE("build timeout and nixpkgs config") {
        auto env = base();
        env["NIXERY_BUILD_TIMEOUT"] = "7200";
        env["NIXERY_NIXPKGS_CONFIG"] = "/nonexistent/nixpkgs.nix";
        CHECK(error_of(env).find("NIXERY_NIXPKGS_CONFIG") != std::string::npos);
        testutil::TempDir dir;
        const auto file = dir / "nixpkgs.nix";
        testutil::write_file(file, "{ allowUnfree = true; }\n");
        env["NIXERY_NIXPKGS_CONFIG"] = file.string();
        auto c = load_config(env);
        REQUIRE_MESSAGE(c, error_of(env));
        CHECK(c->build_timeout == std::chrono::seconds(7200));
        CHECK(c->nixpkgs_config == file);
        CHECK(c->request_timeout() == std::chrono::seconds(7800));
        // A drain waits for builds, up to its cap (below systemd's 20 min).
        CHECK(c->drain_timeout() == Config::k_max_drain);
        env["NIXERY_BUILD_TIMEOUT"] = "300";
        REQUIRE(load_config(env));
        CHECK(load_config(env)->drain_timeout() == std::chrono::seconds(420));
        CHECK(load_config(env)->drain_timeout() >
              load_config(env)->nix_timeout * 4 + std::chrono::seconds(30));
        env["NIXERY_BUILD_TIMEOUT"] = "0";
        CHECK(error_of(env).find("NIXERY_BUILD_TIMEOUT") != std::string::npos);
    }
    SUBCASE("the start page: full or minimal; a local package set's path is not shown") {
        auto env = base();
        CHECK(load_config(env)->start_page == StartPageKind::full);
        CHECK(load_config(env)->describe_source() == "the demo package set");
        env["NIXERY_START_PAGE"] = "minimal";
        CHECK(load_config(env)->start_page == StartPageKind::minimal);
        env["NIXERY_START_PAGE"] = "none";
        CHECK(error_of(env).find("NIXERY_START_PAGE") == 0);
    }
    SUBCASE("gc retention") {
        auto env = base();
        env["NIXERY_GC_KEEP_DAYS"] = "7";
        CHECK(load_config(env)->gc_keep_days == 7);
        env["NIXERY_GC_KEEP_DAYS"] = "a week";
        CHECK(error_of(env).find("NIXERY_GC_KEEP_DAYS") == 0);
    }
    SUBCASE("platforms: the host's by default, a list in order, a bad one named") {
        auto env = base();
        CHECK(load_config(env)->platforms == std::vector<Arch>{host_arch()});
        env["NIXERY_PLATFORMS"] = "linux/amd64,linux/arm64";
        CHECK(load_config(env)->platforms == std::vector<Arch>{Arch::amd64, Arch::arm64});
        env["NIXERY_PLATFORMS"] = "linux/amd64,linux/ppc64le";
        CHECK(error_of(env).find("NIXERY_PLATFORMS: \"linux/ppc64le\" is not a platform") == 0);
    }
    SUBCASE("layer compression") {
        auto env = base();
        CHECK(load_config(env)->layer_compression == LayerCompression::gzip);
        env["NIXERY_LAYER_COMPRESSION"] = "zstd";
        CHECK(load_config(env)->layer_compression == LayerCompression::zstd);
        env["NIXERY_LAYER_COMPRESSION"] = "xz";
        CHECK(error_of(env).find("NIXERY_LAYER_COMPRESSION=\"xz\" is not one of gzip, zstd") == 0);
    }
    SUBCASE("how long nginx may answer a tag: unset is each source's default, at most 60 s") {
        auto env = base();
        CHECK(load_config(env)->tag_cache == std::chrono::seconds(-1));
        env["NIXERY_TAG_CACHE_SECONDS"] = "0";
        CHECK(load_config(env)->tag_cache == std::chrono::seconds(0));
        env["NIXERY_TAG_CACHE_SECONDS"] = "60";
        CHECK(load_config(env)->tag_cache == std::chrono::seconds(60));
        for (const char* bad : {"61", "-1", "ten"}) {
            env["NIXERY_TAG_CACHE_SECONDS"] = bad;
            CHECK(error_of(env).find("NIXERY_TAG_CACHE_SECONDS=\"" + std::string(bad) +
                                     "\" is not a whole number from 0 to 60") == 0);
        }
    }
    SUBCASE("exactly one source") {
        auto env = base();
        env["NIXERY_CHANNEL"] = "nixos-unstable";
        env["NIXERY_PKGS_REPO"] = "https://example.com/pkgs.git";
        const auto msg = error_of(env);
        CHECK(msg.find("NIXERY_CHANNEL") != std::string::npos);
        CHECK(msg.find("NIXERY_PKGS_REPO") != std::string::npos);
        CHECK(msg.find("NIXERY_PKGS_PATH") != std::string::npos);
    }
    SUBCASE("a channel is a name or commit: a URL, with its credentials, or blanks are refused") {
        for (const char* channel : {"http://puller:s3cret@mirror.example.com/nixos.tar.gz",
                                    "https//puller:s3cret@mirror.example.com/nixos",
                                    "puller:s3cret@mirror.example.com/nixos", "nixos-unstable ",
                                    "/nixos-unstable", "nixos-24.05/"}) {
            auto env = base();
            env["NIXERY_CHANNEL"] = channel;
            const auto msg = error_of(env);
            CHECK_MESSAGE(msg.find("is not a channel name") != std::string::npos, channel);
            CHECK(msg.find("NIXERY_CHANNEL_URL") != std::string::npos);
            CHECK(msg.find("s3cret") == std::string::npos);
        }
        auto env = base();
        env["NIXERY_CHANNEL"] = "nixos-24.05";
        CHECK(error_of(env).empty());
    }
    SUBCASE("a git repository given relative to the working directory is made absolute") {
        testutil::TempDir dir;
        const auto before = std::filesystem::current_path();
        std::filesystem::create_directories(dir / "repo");
        std::filesystem::current_path(dir.path());
        for (const char* repo : {"./repo", "repo", "repo/"}) {
            auto env = base();
            env["NIXERY_PKGS_REPO"] = repo;
            auto c = load_config(env);
            REQUIRE_MESSAGE(c, repo);
            CHECK_MESSAGE(std::filesystem::path(c->source_location).is_absolute(), repo);
            CHECK(std::filesystem::equivalent(c->source_location, dir / "repo"));
        }
        std::filesystem::current_path(before);
        for (const char* remote :
             {"https://example.com/pkgs.git", "git@example.com:pkgs.git", "example.com:pkgs.git"}) {
            auto env = base();
            env["NIXERY_PKGS_REPO"] = remote;
            auto c = load_config(env);
            REQUIRE(c);
            CHECK(c->source_location == remote);
        }
    }
    SUBCASE("the metadata server is a host[:port], not a URL") {
        for (const char* host : {"http://169.254.169.254", "metadata.google.internal/",
                                 "localhost:8080/computeMetadata", "meta data"}) {
            auto env = base();
            env.erase("STORAGE_PATH");
            env["NIXERY_STORAGE_BACKEND"] = "gcs";
            env["GCS_BUCKET"] = "b";
            env["GCE_METADATA_HOST"] = host;
            CHECK_MESSAGE(error_of(env).find("GCE_METADATA_HOST") != std::string::npos, host);
            env["GCE_METADATA_HOST"] = "169.254.169.254:8080";
            CHECK(error_of(env).empty());
        }
    }
    SUBCASE("the channel URL: a URL with a scheme, or a startup error") {
        for (const char* url : {"mirror.example.com/nixpkgs", "/", "///", "https://", "://x",
                                "file:///", "puller:s3cret@mirror.example.com/nixpkgs"}) {
            auto env = base();
            env["NIXERY_CHANNEL"] = "nixos-unstable";
            env["NIXERY_CHANNEL_URL"] = url;
            const auto msg = error_of(env);
            CHECK_MESSAGE(msg.find("NIXERY_CHANNEL_URL") != std::string::npos, url);
            CHECK(msg.find("s3cret") == std::string::npos);
        }
        for (const char* url :
             {"https://mirror.example.com/nixpkgs/", "file:///srv/mirror", "http://m:8080"}) {
            auto env = base();
            env["NIXERY_CHANNEL"] = "nixos-unstable";
            env["NIXERY_CHANNEL_URL"] = url;
            auto c = load_config(env);
            REQUIRE_MESSAGE(c, url);
            CHECK(c->channel_url.back() != '/');
        }
    }
    SUBCASE("the popularity setting: a URL, under its own name") {
        auto env = base();
        env["NIX_POPULARITY_URL"] = "/srv/popularity.json";
        CHECK(error_of(env).find("file:///abs/path") != std::string::npos);
        env["NIX_POPULARITY_URL"] = "file:///srv/popularity.json";
        CHECK(error_of(env).empty());
        for (const char* typo :
             {"https//ci:s3cret@example.com/p.json", "ci:s3cret@example.com/p.json"}) {
            env["NIX_POPULARITY_URL"] = typo;
            CHECK(error_of(env).find("is not a URL") != std::string::npos);
            CHECK_MESSAGE(error_of(env).find("s3cret") == std::string::npos, typo);
        }
        env = base();
        env["NIXERY_POPULARITY_URL"] = "https://example.com/p.json";
        CHECK(error_of(env).find("did you mean NIX_POPULARITY_URL?") != std::string::npos);
    }
    SUBCASE("unknown and contradictory settings") {
        auto env = base();
        env["NIXERY_WORKER"] = "3";
        CHECK(error_of(env).find("unknown setting NIXERY_WORKER") == 0);
        env = base();
        env["NIX_TIMEOUT"] = "0";
        CHECK(error_of(env).find("NIX_TIMEOUT") != std::string::npos);
        env = base();
        env["S3_BUCKET"] = "b";
        CHECK(error_of(env).find("S3_BUCKET is set") == 0);
        env = base();
        env["NIXERY_STORAGE_BACKEND"] = "gcs";
        env["GCS_BUCKET"] = "b";
        CHECK(
            error_of(env) ==
            "STORAGE_PATH is set but NIXERY_STORAGE_BACKEND is \"gcs\": blobs live in GCS_BUCKET");
        env.erase("STORAGE_PATH");
        env.erase("GCS_BUCKET");
        CHECK(error_of(env) == "NIXERY_STORAGE_BACKEND is \"gcs\" but GCS_BUCKET is not set");
        env["NIXERY_STORAGE_BACKEND"] = "s3";
        CHECK(error_of(env) == "NIXERY_STORAGE_BACKEND is \"s3\" but S3_BUCKET is not set");
        env["STORAGE_PATH"] = "/srv/blobs";
        env["S3_BUCKET"] = "b";
        CHECK(error_of(env) ==
              "STORAGE_PATH is set but NIXERY_STORAGE_BACKEND is \"s3\": blobs live in S3_BUCKET");
        env = base();
        env.erase("STORAGE_PATH");
        CHECK(error_of(env) == "STORAGE_PATH is not set: set it to the directory blobs are "
                               "stored in, or NIXERY_STORAGE_BACKEND to gcs or s3");
        env = base();
        env.erase("NIXERY_STATE_DIR");
        CHECK(error_of(env).find("NIXERY_STATE_DIR is not set: set it to a directory") == 0);
        // nginx's configuration cannot hold these (nginx/render.cpp refuses
        // them), but commands that render none take them.
        env = base();
        env["STORAGE_PATH"] = "/srv/my blobs";
        env["NIXERY_STATE_DIR"] = "/srv/my state";
        CHECK(load_config(env));
        // A bucket's name alone, and GCS_ENDPOINT without the API's path.
        env = base();
        env.erase("STORAGE_PATH");
        env["NIXERY_STORAGE_BACKEND"] = "gcs";
        env["GCS_BUCKET"] = "gs://nixery";
        CHECK(error_of(env) ==
              "GCS_BUCKET=\"gs://nixery\" is not a bucket name: give the name alone (nixery)");
        env["GCS_BUCKET"] = "nixery/";
        CHECK(error_of(env) ==
              "GCS_BUCKET=\"nixery/\" is not a bucket name: give the name alone (nixery)");
        env["GCS_BUCKET"] = "nixery.example.com";
        env["GCS_ENDPOINT"] = "https://storage.example.com/storage/v1/";
        CHECK(error_of(env).find("GCS_ENDPOINT=\"https://storage.example.com/storage/v1/\" has "
                                 "the API's path") == 0);
        env.erase("GCS_ENDPOINT");
        CHECK(load_config(env));
        env = base();
        env.erase("STORAGE_PATH");
        env["NIXERY_STORAGE_BACKEND"] = "s3";
        env["S3_BUCKET"] = "s3://user:secret@nixery/x";
        CHECK(error_of(env) ==
              "S3_BUCKET=\"…@nixery/x\" is not a bucket name: give the name alone (nixery)");
        // AWS secrets often hold '/': none of it is shown either.
        env["S3_BUCKET"] = "s3://AKIAEXAMPLE:wJalrXUt/K7MDENG@nixery";
        CHECK(error_of(env) ==
              "S3_BUCKET=\"…@nixery\" is not a bucket name: give the name alone (nixery)");
        // A region goes into signatures and AWS's host name: named as the
        // setting that is wrong, not as S3_ENDPOINT, which it was derived into.
        env["S3_BUCKET"] = "nixery";
        for (const auto* region : {"us east-1", "eu-west-1/", "s3.amazonaws.com"}) {
            env["S3_REGION"] = region;
            CHECK(error_of(env) == "S3_REGION=\"" + std::string(region) +
                                       "\" is not a region name: letters, digits, - and _, like "
                                       "us-east-1 (AWS), auto (R2) or garage (Garage), as the "
                                       "store names it");
        }
        for (const auto* region : {"us-east-1", "auto", "garage", "us-gov-west-1"}) {
            env["S3_REGION"] = region;
            CHECK_MESSAGE(load_config(env), region);
        }
        env.erase("S3_REGION");
        env = base();
        env.erase("STORAGE_PATH");
        env["NIXERY_STORAGE_BACKEND"] = "gcs";
        env["GCS_BUCKET"] = "b";
        env["GCS_ENDPOINT"] = "http://127.0.0.1:1";
        env["STORAGE_EMULATOR_HOST"] = "127.0.0.1:2";
        CHECK(error_of(env).find("STORAGE_EMULATOR_HOST and GCS_ENDPOINT are both set") == 0);
    }
}

TEST_CASE("default_max_builds: a build per core, as far as memory goes") {
    constexpr std::uint64_t GiB = 1ULL << 30;
    CHECK(default_max_builds(8, 64 * GiB) == 8);
    CHECK(default_max_builds(2, 4 * GiB) == 2);
    CHECK(default_max_builds(4, 2 * GiB) == 1); // a small VPS: one evaluation at a time
    CHECK(default_max_builds(2, 1 * GiB) == 1); // never none
    CHECK(default_max_builds(0, 0) == 1);       // nothing known
}

TEST_CASE("cgroup_memory_limit: MemoryMax or a container's limit") {
    std::vector<std::string> asked;
    const auto files = [&](std::string memory_max) {
        return [&asked, memory_max](const std::string& path) -> std::optional<std::string> {
            asked.push_back(path);
            return memory_max;
        };
    };
    CHECK(cgroup_memory_limit("0::/system.slice/nixery.service\n", files("3758096384\n")) ==
          3758096384ULL);
    CHECK(asked.back() == "/sys/fs/cgroup/system.slice/nixery.service/memory.max");
    CHECK(cgroup_memory_limit("0::/\n", files("1073741824\n")) == 1073741824ULL);
    CHECK(asked.back() == "/sys/fs/cgroup/memory.max"); // a container's own namespace
    CHECK_FALSE(cgroup_memory_limit("0::/user.slice\n", files("max\n")));
    // cgroup v1 only, or nothing to read: no limit known.
    CHECK_FALSE(cgroup_memory_limit("4:memory:/docker/abc\n1:cpu:/\n", files("1024\n")));
    CHECK_FALSE(cgroup_memory_limit(
        "0::/x\n", [](const std::string&) -> std::optional<std::string> { return std::nullopt; }));
}

TEST_SUITE_END();
