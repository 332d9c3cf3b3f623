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

TEST_SUITE_END();
