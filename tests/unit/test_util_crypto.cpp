#include "util/crypto.hpp"

#include <doctest/doctest.h>

using namespace nixery;

TEST_SUITE_BEGIN("util");

TEST_CASE("RsaPrivateKey::from_pem") {
    const auto bad =
        RsaPrivateKey::from_pem("-----BEGIN PRIVATE KEY-----\nnot a key\n", "key.json");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().message.find("read private key of key.json failed") == 0);
}

TEST_SUITE_END();
