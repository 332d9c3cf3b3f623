// What an evaluation that cannot become an image tells the client.
#include "builder/nix_errors.hpp"
#include "core/platform.hpp"

#include <doctest/doctest.h>

using namespace nixery;

TEST_SUITE_BEGIN("builder");

TEST_CASE("evaluation_error: a set without `system` builds for the host only") {
    Evaluation ev;
    ev.system_applied = false;
    const auto other = host_arch() == Arch::amd64 ? Arch::arm64 : Arch::amd64;
    auto image = parse_image_name("hello");
    image.arch = other;
    const auto refused = evaluation_error(ev, image, "a local package set");
    REQUIRE(refused);
    CHECK(refused->kind == FailureKind::unknown);
    CHECK(refused->message == "the package set takes no \"system\" argument, so it cannot build " +
                                  std::string(oci_architecture(other)) + " images");
    image.arch = host_arch();
    CHECK_FALSE(evaluation_error(ev, image, "a local package set"));
    ev.system_applied = true;
    image.arch = other;
    CHECK_FALSE(evaluation_error(ev, image, "a local package set"));
}

TEST_CASE("nix_error: a build that timed out names the bound that ran out") {
    const NixFailure whole{NixFailure::Kind::timed_out, "build", "", {}, "NIXERY_BUILD_TIMEOUT",
                           std::chrono::seconds(4)};
    CHECK(nix_error(whole, "sleepy").message ==
          "building \"sleepy\" timed out: Nix (build) ran longer than NIXERY_BUILD_TIMEOUT (4 s)");
    const NixFailure builder{NixFailure::Kind::timed_out, "build", "", {}, "NIX_TIMEOUT",
                             std::chrono::seconds(3)};
    CHECK(nix_error(builder, "sleepy").message ==
          "building \"sleepy\" timed out: a builder ran longer than NIX_TIMEOUT (3 s)");
}

TEST_CASE("nix_error: an evaluation that timed out names the package it was evaluating") {
    NixFailure ev{NixFailure::Kind::timed_out, "evaluate", "", {}, "NIX_TIMEOUT",
                  std::chrono::seconds(2)};
    ev.package = "evaluation.endless";
    const auto failure = nix_error(ev, "evaluation.endless/hello");
    CHECK(failure.message == "building \"evaluation.endless/hello\" timed out: Nix (evaluate) ran "
                             "longer than NIX_TIMEOUT (2 s) while evaluating package "
                             "\"evaluation.endless\"");
    CHECK(failure.detail ==
          R"({"timeout":2,"limit":"NIX_TIMEOUT","package":"evaluation.endless","log":""})");
    // Before any package (importing the package set): none named.
    ev.package.clear();
    CHECK(nix_error(ev, "hello").message ==
          "building \"hello\" timed out: Nix (evaluate) ran longer than NIX_TIMEOUT (2 s)");
}

TEST_CASE("nix_error: a Nix stopped on request is not the image's failure") {
    // `nixery build` interrupted: remembered as a passing fault, if at all.
    const NixFailure stopped{NixFailure::Kind::stopped, "build", "", {}, {}, {}};
    const auto failure = nix_error(stopped, "pause");
    CHECK(failure.kind == FailureKind::unavailable);
    CHECK(is_transient(failure.kind));
    CHECK(failure.message == "building \"pause\" was stopped on the server; retry");
}

TEST_CASE("nix_error: a package not available on the image's platform is unknown, not refused") {
    // nixpkgs refuses it like an unfree one, but nothing the operator
    // allows makes it run there: no such image for that platform.
    NixFailure unsupported{NixFailure::Kind::refused,
                           "evaluate",
                           "Package \u2018x86only-1.0\u2019 is not available on the requested "
                           "hostPlatform",
                           "x86only",
                           {},
                           {}};
    auto failure = nix_error(unsupported, "arm64/x86only");
    CHECK(failure.kind == FailureKind::unknown);
    CHECK(registry_error(failure).status == 404);
    CHECK(failure.message == "package \"x86only\" in \"arm64/x86only\" is not available on this "
                             "platform: Package \u2018x86only-1.0\u2019 is not available on the "
                             "requested hostPlatform");
    // In nixpkgs' wording before 2022.
    unsupported.log_tail =
        "Package \u2018x86only-1.0\u2019 is not supported on \u2018aarch64-linux\u2019";
    CHECK(nix_error(unsupported, "arm64/x86only").kind == FailureKind::unknown);
    // An unfree package stays the operator's to allow.
    unsupported.log_tail =
        "Package \u2018unfree-1.0\u2019 has an unfree license (\u2018unfree\u2019)";
    CHECK(nix_error(unsupported, "unfree").kind == FailureKind::refused);
}

TEST_CASE("nix_error: Nix unable to fork is the server's failure, not the image's") {
    const NixFailure f{NixFailure::Kind::no_process,
                       "build",
                       "error: unable to fork: Resource temporarily unavailable",
                       {},
                       {},
                       {}};
    const auto failure = nix_error(f, "pause");
    CHECK(failure.kind == FailureKind::fault);
    CHECK(is_transient(failure.kind)); // not remembered against the image
    CHECK(registry_error(failure).status == 500);
    CHECK(failure.message == "building \"pause\" failed on the server: Nix could not start a "
                             "process (out of processes or memory); retry later");
    CHECK(failure.internal.find("unable to fork") != std::string::npos);
}

TEST_CASE("nix_error: no builder for a platform is the server's, not the image's") {
    // NIXERY_PLATFORMS lists linux/arm64, and no builder of aarch64-linux
    // is configured or reachable: a 503 the operator is told of, not a
    // 404 remembered against the image.
    const std::string tail =
        "error: a 'aarch64-linux' with features {} is required to build "
        "'/nix/store/g-pause.drv', but I am a 'x86_64-linux' with features {benchmark}";
    const NixFailure none{NixFailure::Kind::no_builder, "build", tail, {}, {}, {}};
    const auto failure = nix_error(none, "arm64/pause");
    CHECK(failure.kind == FailureKind::unavailable);
    CHECK(is_transient(failure.kind));
    CHECK(needs_operator(failure.kind));
    CHECK(registry_error(failure).status == 503);
    CHECK(failure.message.starts_with("building \"arm64/pause\" failed: no Nix builder of the "
                                      "server can build it now"));
    CHECK(failure.message.ends_with("Nix (build) said:\n" + tail));
}

TEST_SUITE_END();
TEST_SUITE_END();
