// make_s3_storage: settings that cannot work are start-up errors. Listing
// against a store that bends ListObjectsV2's conventions.
#include "loopback_server.hpp"
#include "storage/s3.hpp"
#include "testutil.hpp"

#include <doctest/doctest.h>
#include <mutex>

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

std::string listing(const std::string& contents, const std::string& after) {
    return "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult>" + contents + after +
           "</ListBucketResult>";
}

std::string object(const std::string& key, const std::string& modified) {
    return "<Contents><Key>" + key + "</Key><LastModified>" + modified +
           "</LastModified><Size>3</Size></Contents>";
}

} // namespace

TEST_SUITE_BEGIN("storage");

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

TEST_CASE("S3 list: every page, and times gc can trust") {
    testutil::TempDir dir;
    std::mutex mutex;
    std::vector<std::string> targets;
    std::string bad_time;
    testutil::LoopbackServer server([&](int fd, int) {
        while (const auto seen = testutil::LoopbackServer::read_request(fd)) {
            std::lock_guard lock(mutex);
            targets.push_back(seen->target);
            if (seen->target.find("start-after=layers%2Fb") != std::string::npos) {
                testutil::LoopbackServer::reply(
                    fd, 200,
                    listing(object("layers/c",
                                   bad_time.empty() ? "2026-12-06T01:02:03.000Z" : bad_time),
                            "<IsTruncated>false</IsTruncated>"));
            } else {
                // Truncated, as some stores answer, without a token.
                testutil::LoopbackServer::reply(
                    fd, 200,
                    listing(object("layers/a", "2026-12-06T01:02:03.000Z") +
                                object("layers/b", "2026-12-06T01:02:04.000Z"),
                            "<IsTruncated>true</IsTruncated>"));
            }
        }
    });
    S3Settings settings;
    settings.bucket = "nixery";
    settings.endpoint = "http://127.0.0.1:" + std::to_string(server.port());
    settings.path_style = true;
    settings.access_key_id = "key";
    settings.secret_access_key = "secret";
    auto store = make_s3_storage(settings, dir.path());
    REQUIRE_MESSAGE(store, store.error().message);

    SUBCASE("a truncated page without a token goes on after its last key") {
        const auto objects = (*store)->list("layers/");
        REQUIRE_MESSAGE(objects, objects.error().message);
        REQUIRE(objects->size() == 3);
        CHECK((*objects)[2].key == "layers/c");
        CHECK((*objects)[1].modified == 1796518924);
        std::lock_guard lock(mutex);
        CHECK(targets.size() == 2);
    }
    SUBCASE("a time that does not parse fails the listing, not passes as old") {
        bad_time = "Sun, 06 Dec 2026 01:02:03 GMT";
        const auto objects = (*store)->list("layers/");
        REQUIRE_FALSE(objects);
        CHECK_MESSAGE(objects.error().message.find(
                          "\"s3://nixery/layers/c\" a LastModified that is not a time") !=
                          std::string::npos,
                      objects.error().message);
    }
}

TEST_SUITE_END();
