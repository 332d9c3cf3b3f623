// make_s3_storage: settings that cannot work are start-up errors.
#include "storage/s3.hpp"
#include "testutil.hpp"

#include <doctest/doctest.h>

using namespace nixery;

namespace {

Result<std::unique_ptr<StorageBackend>> open(const std::string& endpoint, const std::string& bucket,
                                             bool path_style) {
    testutil::TempDir dir;
    S3Settings s;
    s.bucket = bucket;
    s.endpoint = endpoint;
    s.path_style = path_style;
    return make_s3_storage(s, dir.path());
}

} // namespace

TEST_SUITE_BEGIN("storage");

TEST_CASE("s3_part_size: 8 MiB parts, larger where 10,000 would not hold the blob") {
    constexpr std::uint64_t mib = 1 << 20;
    CHECK(s3_part_size(0) == 8 * mib);
    CHECK(s3_part_size(8 * mib) == 8 * mib);
    CHECK(s3_part_size(10000 * 8 * mib) == 8 * mib); // 78 GiB: as before
    CHECK(s3_part_size(10000 * 8 * mib + 1) == 9 * mib);
    const std::uint64_t huge = 5ULL << 40; // S3's largest object, 5 TiB
    CHECK((huge + s3_part_size(huge) - 1) / s3_part_size(huge) <= 10000);
    CHECK(s3_part_size(huge) % mib == 0);
}

TEST_CASE("make_s3_storage") {
    SUBCASE("virtual-host addressing needs a domain for the bucket") {
        for (const auto* endpoint : {"http://127.0.0.1:9000", "http://[::1]:9000",
                                     "http://localhost:9000", "https://LOCALHOST"}) {
            const auto r = open(endpoint, "nixery", false);
            REQUIRE_FALSE(r);
            CHECK_MESSAGE(r.error().message.find("S3_ENDPOINT=\"" + std::string(endpoint) + "\"") ==
                              0,
                          r.error().message);
            CHECK(r.error().message.find("set S3_PATH_STYLE=true") != std::string::npos);
            CHECK(open(endpoint, "nixery", true));
        }
        CHECK(open("http://minio.internal:9000", "nixery", false));
    }

    SUBCASE("a dotted bucket over https is not covered by the store's certificate") {
        const auto r = open("", "images.example.com", false);
        REQUIRE_FALSE(r);
        CHECK(r.error().message.find("S3_BUCKET=\"images.example.com\" has dots") == 0);
        CHECK(r.error().message.find("set S3_PATH_STYLE=true") != std::string::npos);
        CHECK(open("", "images.example.com", true));
        CHECK(open("http://minio.internal:9000", "images.example.com", false));
        CHECK(open("https://s3.example.com", "images", false));
    }
}

TEST_SUITE_END();
