// The git source's use of ssh: batch mode (no questions nobody would
// answer), unless the operator's own GIT_SSH_COMMAND says otherwise. A
// fake ssh on PATH records how git ran it.
#include "nix/source.hpp"
#include "testutil.hpp"
#include "util/lock.hpp"

#include <cstdlib>
#include <doctest/doctest.h>
#include <fstream>
#include <sstream>

using namespace nixery;
using testutil::TempDir;

namespace {

std::string read_all(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// Sets an environment variable for the scope, restoring it after.
class ScopedEnv {
public:
    ScopedEnv(const char* name, const std::string& value) : m_name(name) {
        if (const char* old = std::getenv(name)) {
            m_old = old;
        }
        ::setenv(name, value.c_str(), 1);
    }
    ~ScopedEnv() {
        if (m_old) {
            ::setenv(m_name, m_old->c_str(), 1);
        } else {
            ::unsetenv(m_name);
        }
    }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

private:
    const char* m_name;
    std::optional<std::string> m_old;
};

// An ssh that writes its arguments to `record` and fails as an unreachable
// host does.
void fake_ssh(const std::filesystem::path& script, const std::filesystem::path& record) {
    testutil::write_file(script, "#!/bin/sh\necho \"$@\" > '" + record.string() + "'\nexit 255\n",
                         0755);
}

} // namespace

TEST_SUITE_BEGIN("nix");

TEST_CASE("git source: ssh in batch mode, unless GIT_SSH_COMMAND says otherwise") {
    TempDir dir;
    fake_ssh(dir / "ssh", dir / "ssh-args");
    fake_ssh(dir / "operators-ssh", dir / "operators-ssh-args");
    const ScopedEnv path("PATH", dir.path().string() + ":" + std::getenv("PATH"));
    Config config;
    config.source = SourceKind::git;
    config.source_location = "ssh://git.example.invalid/pkgs.git";
    config.state_dir = dir / "state";
    config.nix_timeout = std::chrono::seconds(20);
    const auto source = make_git_source(config);

    const auto unreachable = source->resolve("latest");
    REQUIRE_FALSE(unreachable);
    CHECK(unreachable.error().kind == FailureKind::unavailable);
    const auto args = read_all(dir / "ssh-args");
    CHECK_MESSAGE(args.find("-o BatchMode=yes") != std::string::npos, args);
    CHECK(args.find("git.example.invalid") != std::string::npos);

    const ScopedEnv own("GIT_SSH_COMMAND", (dir / "operators-ssh").string());
    CHECK_FALSE(source->resolve("latest"));
    CHECK(read_all(dir / "operators-ssh-args").find("git.example.invalid") != std::string::npos);
}

TEST_CASE("git source: a background fetch is waited for at shutdown") {
    // A git whose fetches take a while and fail (as an unreachable server
    // does after a time-out); the rest succeeds or says "no".
    TempDir dir;
    testutil::write_file(dir / "git",
                         "#!/bin/sh\ncase \"$*\" in\n"
                         "  *' init '*) for d; do :; done; mkdir -p \"$d\" && touch \"$d/HEAD\"; "
                         "exit 0 ;;\n"
                         "  *' fetch '*) sleep 2; echo fetch >> '" +
                             (dir / "fetches").string() +
                             "'; exit 1 ;;\n"
                             "esac\nexit 1\n",
                         0755);
    const ScopedEnv path("PATH", dir.path().string() + ":" + std::getenv("PATH"));
    Config config;
    config.source = SourceKind::git;
    config.source_location = "https://git.example.invalid/pkgs.git";
    config.state_dir = dir / "state";
    config.nix_timeout = std::chrono::seconds(1);
    std::filesystem::create_directories(config.locks());
    REQUIRE(LockTable::open(config.lock_file())); // as `nixery serve` makes it
    const auto source = make_git_source(config);

    const auto commit = std::string(40, 'a');
    const auto resolved = source->resolve(commit);
    REQUIRE(resolved);
    const auto prepared = source->prepare(*resolved);
    REQUIRE_FALSE(prepared);
    // Still fetching after NIX_TIMEOUT.
    CHECK_MESSAGE(prepared.error().kind == FailureKind::busy, prepared.error().internal);
    CHECK(prepared.error().retry_after > 0);
    CHECK(read_all(dir / "fetches").empty());
    CHECK(wait_for_git_fetches(std::chrono::steady_clock::now() + std::chrono::seconds(20)));
    // Both attempts (the commit alone, then every branch and tag) ran.
    CHECK(read_all(dir / "fetches") == "fetch\nfetch\n");
    CHECK(wait_for_git_fetches(std::chrono::steady_clock::now()));
}

TEST_SUITE_END();
