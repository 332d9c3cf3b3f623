#include "nix/nix.hpp"
#include "util/text.hpp"

#include <doctest/doctest.h>
#include <rapidjson/document.h>

using namespace nixery;

TEST_SUITE_BEGIN("nix");

TEST_CASE("request_json passes names as data") {
    NixRequest req;
    req.source_json = R"({"type":"path","path":"/srv/pkgs"})";
    req.arch = Arch::arm64;
    req.packages = {"xorg.xev", "a\"; builtins.exec [\"rm\"] #"};
    const auto json = request_json(req);
    rapidjson::Document d;
    d.Parse(json.c_str());
    REQUIRE_FALSE(d.HasParseError());
    CHECK(std::string(d["system"].GetString()) == "aarch64-linux");
    CHECK(std::string(d["source"]["path"].GetString()) == "/srv/pkgs");
    REQUIRE(d["packages"].Size() == 2);
    CHECK(d["packages"][0].Size() == 2);
    CHECK(std::string(d["packages"][0][1].GetString()) == "xev");
    CHECK(std::string(d["packages"][1][0].GetString()) == "a\"; builtins");
    CHECK(d["implicit"].Size() == 2);
}

TEST_CASE("clean_nix_output") {
    CHECK(clean_nix_output("\x1b[31;1merror:\x1b[0m builder failed\n\n  > log\n") ==
          "error: builder failed\n\n  > log\n");
    // image.nix's markers are for the server.
    CHECK(clean_nix_output("trace: nixery-evaluating-package [\"a\"]\n"
                           "error: x\nno newline") == "error: x\nno newline");
}

TEST_CASE("package_being_evaluated") {
    SUBCASE("the last marker names the package") {
        const std::string err =
            "trace: nixery-evaluating-package [\"hello\"]\n"
            "trace: nixery-evaluating-package [\"xorg\",\"xev\"]\n"
            "error: evaluation aborted with the following error message: 'no'\n";
        CHECK(package_being_evaluated(err) == "xorg.xev");
    }
    SUBCASE("colours and no marker") {
        CHECK(package_being_evaluated("\x1b[35;1mtrace:\x1b[0m nixery-evaluating-package "
                                      "[\"a\"]\nerror: x") == "a");
        CHECK_FALSE(package_being_evaluated("error: syntax error\n").has_value());
        CHECK_FALSE(package_being_evaluated("trace: nixery-evaluating-package {\n").has_value());
    }
}

TEST_CASE("refusal_reason") {
    SUBCASE("unfree, as nixpkgs says it, without position and advice") {
        const std::string err =
            "error: Package \u2018vscode-1.85.1\u2019 in "
            "/nix/store/abc-source/pkgs/applications/editors/vscode/vscode.nix:69 has an unfree "
            "license (\u2018unfree\u2019), refusing to evaluate.\n\n"
            "a) To temporarily allow unfree packages, you can use an environment variable\n"
            "   for a single invocation of the nix tools.\n\n"
            "     $ export NIXPKGS_ALLOW_UNFREE=1\n";
        CHECK(refusal_reason(err) ==
              "Package \u2018vscode-1.85.1\u2019 has an unfree license (\u2018unfree\u2019)");
    }
    SUBCASE("insecure, after newer Nix's trace of what it was evaluating") {
        const std::string err =
            "       \u2026 while evaluating the attribute 'drvPath'\n\n"
            "       error: Package \u2018openssl-1.1.1w\u2019 in /nix/store/x-source/pkgs/a.nix:1 "
            "is marked as insecure, refusing to evaluate.\n\n"
            "       Known issues:\n";
        CHECK(refusal_reason(err) == "Package \u2018openssl-1.1.1w\u2019 is marked as insecure");
    }
    SUBCASE("nixpkgs' wording since 2026: unfree, with the remediation after it") {
        const std::string err =
            "error: Refusing to evaluate package 'vscode-1.108.0' in "
            "/nix/store/abc-source/pkgs/by-name/vs/vscode/package.nix:94 because it has an "
            "unfree license (‘unfree’)\n"
            "a) To temporarily allow unfree packages, you can use an environment variable\n"
            "     $ export NIXPKGS_ALLOW_UNFREE=1\n";
        CHECK(refusal_reason(err) == "Package ‘vscode-1.108.0’ has an unfree license (‘unfree’)");
    }
    SUBCASE("since 2026: the problems listed (after a blank line), an unknown position, a trace") {
        const std::string err =
            "       … while evaluating the attribute 'drvPath'\n\n"
            "       error: Refusing to evaluate package 'kicad-base-10.0.5' in «unknown-file» "
            "because it has problems:\n\n"
            "         - broken: This package is broken.\n"
            "         - maintainerless: No maintainers\n"
            "       See https://nixos.org/manual/nixpkgs/unstable#sec-allow-broken\n";
        CHECK(refusal_reason(err) == "Package ‘kicad-base-10.0.5’ has problems: broken: "
                                     "This package is broken.; maintainerless: No maintainers");
    }
    SUBCASE("since 2026: an unsupported platform keeps its first line") {
        const std::string err =
            "error: Refusing to evaluate package 'qtwayland-6.11.0' in /nix/store/x/a.nix:3 "
            "because it is not available on the requested hostPlatform:\n"
            "  hostPlatform.system = \"aarch64-darwin\"\n"
            "  package.meta.platforms = [ ]\n";
        CHECK(refusal_reason(err) == "Package ‘qtwayland-6.11.0’ is not available on the "
                                     "requested hostPlatform");
    }
    SUBCASE("other errors are not refusals") {
        CHECK_FALSE(
            refusal_reason("error: Refusing to evaluate package 'x' in a.nix:1\n").has_value());
        CHECK_FALSE(refusal_reason("error: attribute 'x' missing\n").has_value());
        CHECK_FALSE(refusal_reason("error: refusing to evaluate, says someone\n").has_value());
    }
}

TEST_CASE("failure_kind_of: what Nix's last lines say a failure met") {
    using Kind = NixFailure::Kind;
    SUBCASE("a binary cache that breaks off a NAR, as Nix 2.8 says it") {
        CHECK(failure_kind_of(
                  "copying path '/nix/store/71nz-cached' from 'http://127.0.0.1:41695'...\n"
                  "error: unable to download 'http://127.0.0.1:41695/nar/0psn.nar.xz': HTTP "
                  "error 200 ('OK') (curl error: Transferred a partial file)\n"
                  "error: some substitutes for the outputs of derivation "
                  "'/nix/store/mvis-cached.drv' failed (usually happens due to networking "
                  "issues); try '--fallback' to build derivation from source\n") == Kind::network);
    }
    SUBCASE("Nix's own downloads: no DNS, no route, a 5xx, a 429") {
        for (const char* line :
             {"error: unable to download 'https://cache.nixos.org/nar/x.nar.xz': Couldn't "
              "resolve host name (6)",
              "error: unable to download 'https://cache.nixos.org/x.narinfo': Could not "
              "connect to server (7)",
              "error: unable to download 'https://example.org/src.tar.gz': HTTP error 503",
              "error: unable to download 'https://api.github.com/x': HTTP error 429"}) {
            CAPTURE(line);
            CHECK(failure_kind_of(line) == Kind::network);
        }
    }
    SUBCASE("a fetcher's curl or git that cannot reach its host") {
        CHECK(failure_kind_of("trying https://example.org/foo-1.0.tar.gz\n"
                              "curl: (6) Could not resolve host: example.org\n"
                              "error: cannot download foo-1.0.tar.gz from any mirror\n"
                              "error: builder for '/nix/store/x-foo-1.0.tar.gz.drv' failed with "
                              "exit code 1\n") == Kind::network);
        CHECK(failure_kind_of("fatal: unable to access 'https://github.com/o/r/': Failed to "
                              "connect to github.com port 443: Connection timed out\n") ==
              Kind::network);
    }
    SUBCASE("no builder for the derivation's system or features, as Nix 2.8 and later say it") {
        CHECK(failure_kind_of("this derivation will be built:\n  /nix/store/g-pause.drv\n"
                              "error: a 'aarch64-linux' with features {} is required to build "
                              "'/nix/store/g-pause.drv', but I am a 'x86_64-linux' with features "
                              "{benchmark, big-parallel, kvm, nixos-test}\n") == Kind::no_builder);
        CHECK(failure_kind_of("error: Cannot build '/nix/store/g-pause.drv'.\n"
                              "       Reason: required system or feature not available\n"
                              "       Required system: 'aarch64-linux' with features {}\n"
                              "       Current system: 'x86_64-linux' with features {kvm}\n") ==
              Kind::no_builder);
        // max-jobs = 0 and no remote builder (as Nix 2.8 says it here).
        CHECK(failure_kind_of("error: unable to start any build; either increase '--max-jobs' or "
                              "enable remote builds.\n       "
                              "https://nixos.org/manual/nix/stable/advanced-topics/"
                              "distributed-builds.html\n") == Kind::no_builder);
    }
    SUBCASE("a source that is gone is the image's failure") {
        CHECK(failure_kind_of("curl: (22) The requested URL returned error: 404\n"
                              "error: cannot download foo-1.0.tar.gz from any mirror\n") ==
              Kind::failed);
        CHECK(failure_kind_of("error: unable to download 'https://example.org/x.tar.gz': HTTP "
                              "error 404\n\n       response body:\n\n       Not Found\n") ==
              Kind::failed);
        CHECK(failure_kind_of("fatal: unable to access 'https://example.org/r/': The requested "
                              "URL returned error: 403\n") == Kind::failed);
        CHECK(failure_kind_of("fatal: repository 'https://example.org/r/' not found\n") ==
              Kind::failed);
    }
    SUBCASE("a test suite that finds no network in the sandbox is the package's failure") {
        CHECK(failure_kind_of("test_download ... curl: (7) Failed to connect to localhost port "
                              "8080: Connection refused\nFAIL: 1 of 12 tests\n"
                              "error: builder for '/nix/store/x-pkg.drv' failed with exit code "
                              "2\n") == Kind::failed);
        CHECK(
            failure_kind_of("test_fetch (tests.TestClient) ... ERROR\n"
                            "ConnectionRefusedError: [Errno 111] Connection refused\n"
                            "error: builder for '/nix/store/x-py.drv' failed with exit code 1\n") ==
            Kind::failed);
    }
    SUBCASE("a builder that fails while a substituter is unreachable is the package's failure") {
        CHECK(failure_kind_of(
                  "warning: error: unable to download 'https://cache.nixos.org/nix-cache-info': "
                  "Couldn't resolve host name (6); retrying in 282 ms\n"
                  "warning: unable to download 'https://cache.nixos.org/nix-cache-info': "
                  "Couldn't resolve host name (6)\n"
                  "building '/nix/store/n2kk-failing.drv'...\ncompiling\n"
                  "error: builder for '/nix/store/n2kk-failing.drv' failed with exit code 1\n") ==
              Kind::failed);
    }
    SUBCASE("a builder the kernel killed; a full disk; no daemon") {
        CHECK(failure_kind_of("working\nerror: builder for '/nix/store/fmnk-killme.drv' failed "
                              "due to signal 9 (Killed)\n") == Kind::killed);
        CHECK(failure_kind_of("error: unable to fork: Resource temporarily unavailable\n") ==
              Kind::no_process);
        CHECK(failure_kind_of("error: cloning builder process: Cannot allocate memory\n") ==
              Kind::no_process);
        CHECK(failure_kind_of("error: writing to file: No space left on device\n") ==
              Kind::disk_full);
        CHECK(failure_kind_of("error: cannot connect to socket at "
                              "'/nix/var/nix/daemon-socket/socket': No such file or directory\n") ==
              Kind::not_runnable);
        CHECK(failure_kind_of("error: builder for '/nix/store/x.drv' failed with exit code 2\n") ==
              Kind::failed);
    }
}

TEST_CASE("parse_validity_registration") {
    const std::string text = "/nix/store/aaa-hello\n"
                             "0123abcd\n"
                             "1200\n"
                             "/nix/store/ddd-hello.drv\n"
                             "2\n"
                             "/nix/store/aaa-hello\n"
                             "/nix/store/bbb-glibc\n"
                             "/nix/store/bbb-glibc\n"
                             "4567\n"
                             "99\n"
                             "\n"
                             "0\n";
    const auto paths = parse_validity_registration(text);
    REQUIRE(paths);
    REQUIRE(paths->size() == 2);
    CHECK((*paths)[0].path == "/nix/store/aaa-hello");
    CHECK((*paths)[0].nar_size == 1200);
    CHECK((*paths)[0].references ==
          std::vector<std::string>{"/nix/store/aaa-hello", "/nix/store/bbb-glibc"});
    CHECK((*paths)[1].nar_size == 99);
    CHECK((*paths)[1].references.empty());
    CHECK_FALSE(parse_validity_registration("/nix/store/x\nhash\nnot-a-number\n\n0\n"));
    CHECK_FALSE(parse_validity_registration("/nix/store/x\nhash\n"));
}

TEST_CASE("run_nix_on_paths: paths go in calls of k_paths_per_call, in order") {
    std::vector<std::string> paths;
    for (std::size_t i = 0; i < 2 * k_paths_per_call + 500; ++i) {
        paths.push_back("/nix/store/p" + std::to_string(i));
    }
    std::vector<std::size_t> call_sizes;
    std::vector<std::string> seen;
    auto r = run_nix_on_paths({"printf", "%s\\n"}, paths, "print", std::chrono::seconds(10),
                              [&](const std::string& out) -> Result<void, NixFailure> {
                                  const auto lines = split_nonempty(out);
                                  call_sizes.push_back(lines.size());
                                  seen.insert(seen.end(), lines.begin(), lines.end());
                                  return {};
                              });
    REQUIRE(r);
    CHECK(call_sizes == std::vector<std::size_t>{k_paths_per_call, k_paths_per_call, 500});
    CHECK(seen == paths);
    // No paths: no call at all (nix-store --dump-db without paths dumps the whole store).
    call_sizes.clear();
    REQUIRE(run_nix_on_paths({"false"}, {}, "nothing", std::chrono::seconds(10),
                             [&](const std::string&) -> Result<void, NixFailure> {
                                 call_sizes.push_back(0);
                                 return {};
                             }));
    CHECK(call_sizes.empty());
}

TEST_CASE("parse_evaluation") {
    const auto request = request_json({R"({"type":"path","path":"/p"})", Arch::amd64, {"a", "b"}});
    SUBCASE("found, missing; implicit packages by their attribute") {
        auto ev = parse_evaluation(
            R"({"packages":[{"status":"found","out":"/nix/store/x-a","drv":"/nix/store/x-a.drv",)"
            R"("output":"out","attrPath":["a"]},{"status":"missing"}],"implicit":[{"out":)"
            R"("/nix/store/c-cacert","drv":"/nix/store/c-cacert.drv","output":"out","attrPath":)"
            R"(["cacert"]}],"systemApplied":true})",
            request);
        REQUIRE_MESSAGE(ev, (ev ? "" : ev.error().message));
        CHECK(ev->packages.size() == 1);
        CHECK(ev->derived_paths().at(0) == "/nix/store/x-a.drv!out");
        CHECK(ev->missing == std::vector<std::string>{"b"});
        CHECK(ev->implicit.at(0).name == "cacert");
        CHECK(ev->system_applied);
    }
    SUBCASE("a package without attrPath, or not an object, is no crash") {
        // A package that is not an object is an error, not a crash.
        CHECK_FALSE(parse_evaluation(R"({"packages":[{"status":"found","out":"/nix/store/x-a",)"
                                     R"("drv":"/nix/store/x-a.drv","output":"out"},3],)"
                                     R"("implicit":[]})",
                                     request));
        // Without the derivation to realise, a package is malformed.
        CHECK_FALSE(parse_evaluation(
            R"({"packages":[{"status":"found","out":"/nix/store/x-a"},3],"implicit":[]})",
            request));
        CHECK_FALSE(parse_evaluation(R"({"packages":[1,2],"implicit":[{"attrPath":1}]})", request));
        CHECK_FALSE(parse_evaluation(R"({"packages":[]})", request));
        CHECK_FALSE(parse_evaluation("", request));
    }
}

TEST_SUITE_END();
