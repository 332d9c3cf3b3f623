// Listing a bucket, which gc trusts to be whole and to give each object's
// time, against loopback stores that bend their API's conventions.
#include "loopback_server.hpp"
#include "storage/gcs.hpp"
#include "storage/s3.hpp"
#include "testutil.hpp"

#include <doctest/doctest.h>
#include <mutex>

using namespace nixery;

namespace {

std::string listing(const std::string& contents, const std::string& after) {
    return "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult>" + contents + after +
           "</ListBucketResult>";
}

std::string object(const std::string& key, const std::string& modified) {
    return "<Contents><Key>" + key + "</Key><LastModified>" + modified +
           "</LastModified><Size>3</Size></Contents>";
}

// Objects a and b, and more to come (`after`: where, if the store says).
std::string first_page(const std::string& after) {
    return listing(object("layers/a", "2026-12-06T01:02:03.000Z") +
                       object("layers/b", "2026-12-06T01:02:04.000Z"),
                   "<IsTruncated>true</IsTruncated>" + after);
}

std::unique_ptr<StorageBackend> s3_store(const testutil::LoopbackServer& server,
                                         const testutil::TempDir& dir) {
    S3Settings settings;
    settings.bucket = "nixery";
    settings.endpoint = "http://127.0.0.1:" + std::to_string(server.port());
    settings.path_style = true;
    settings.access_key_id = "key";
    settings.secret_access_key = "secret";
    auto store = make_s3_storage(settings, dir.path());
    REQUIRE_MESSAGE(store, store.error().message);
    return std::move(*store);
}

} // namespace

TEST_SUITE_BEGIN("storage");

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
                testutil::LoopbackServer::reply(fd, 200, first_page(""));
            }
        }
    });
    auto store = s3_store(server, dir);

    SUBCASE("a truncated page without a token goes on after its last key") {
        const auto objects = store->list("layers/");
        REQUIRE_MESSAGE(objects, objects.error().message);
        REQUIRE(objects->size() == 3);
        CHECK((*objects)[2].key == "layers/c");
        CHECK((*objects)[1].modified == 1796518924);
        std::lock_guard lock(mutex);
        CHECK(targets.size() == 2);
    }
    SUBCASE("a time that does not parse fails the listing, not passes as old") {
        bad_time = "Sun, 06 Dec 2026 01:02:03 GMT";
        const auto objects = store->list("layers/");
        REQUIRE_FALSE(objects);
        CHECK_MESSAGE(objects.error().message.find(
                          "\"s3://nixery/layers/c\" a LastModified that is not a time") !=
                          std::string::npos,
                      objects.error().message);
    }
}

TEST_CASE("GCS list: an object without a readable time fails the listing") {
    testutil::TempDir dir;
    testutil::LoopbackServer server([&](int fd, int) {
        while (const auto seen = testutil::LoopbackServer::read_request(fd)) {
            testutil::LoopbackServer::reply(
                fd, 200,
                R"({"items":[{"name":"layers/a","size":"3","updated":"2026-12-06T01:02:03.000Z"},)"
                R"({"name":"layers/b","size":"3"}]})");
        }
    });
    GcsSettings settings;
    settings.bucket = "nixery";
    settings.emulator_host = "127.0.0.1:" + std::to_string(server.port());
    auto store = make_gcs_storage(settings, dir.path());
    REQUIRE_MESSAGE(store, store.error().message);
    const auto objects = (*store)->list("layers/");
    REQUIRE_FALSE(objects);
    CHECK_MESSAGE(objects.error().message.find(
                      "\"gs://nixery/layers/b\" no readable \"updated\" time") != std::string::npos,
                  objects.error().message);
}

TEST_CASE("S3 list: a continuation token is followed, and one repeated fails") {
    testutil::TempDir dir;
    std::mutex mutex;
    std::vector<std::string> targets;
    bool repeat = false;
    testutil::LoopbackServer server([&](int fd, int) {
        while (const auto seen = testutil::LoopbackServer::read_request(fd)) {
            std::lock_guard lock(mutex);
            targets.push_back(seen->target);
            const bool second =
                seen->target.find("continuation-token=tok%2F1") != std::string::npos;
            if (second && !repeat) {
                testutil::LoopbackServer::reply(
                    fd, 200,
                    listing(object("layers/c", "2026-12-06T01:02:03.000Z"),
                            "<IsTruncated>false</IsTruncated>"));
            } else if (targets.size() > 5) {
                testutil::LoopbackServer::reply(fd, 500, "stop");
            } else {
                testutil::LoopbackServer::reply(
                    fd, 200, first_page("<NextContinuationToken>tok/1</NextContinuationToken>"));
            }
        }
    });
    auto store = s3_store(server, dir);

    SUBCASE("the token is sent back as ListObjectsV2's continuation-token") {
        const auto objects = store->list("layers/");
        REQUIRE_MESSAGE(objects, objects.error().message);
        CHECK(objects->size() == 3);
        std::lock_guard lock(mutex);
        CHECK(targets.size() == 2);
    }
    SUBCASE("a store that gives the same token again fails the listing, not loops") {
        repeat = true;
        const auto objects = store->list("layers/");
        REQUIRE_FALSE(objects);
        CHECK_MESSAGE(objects.error().message.find("the store gave the same page again") !=
                          std::string::npos,
                      objects.error().message);
        std::lock_guard lock(mutex);
        CHECK(targets.size() == 2);
    }
}

TEST_CASE("GCS list: every page, and a page token given before fails") {
    // Like the JSON API, the store sends only the fields the request asks
    // for (`fields`): nextPageToken too.
    testutil::TempDir dir;
    std::mutex mutex;
    int requests = 0;
    bool repeat = false;
    bool cycle = false; // p2 leads to p3, which leads back to p2
    testutil::LoopbackServer server([&](int fd, int) {
        while (const auto seen = testutil::LoopbackServer::read_request(fd)) {
            std::lock_guard lock(mutex);
            ++requests;
            const bool asks_token = seen->target.find("nextPageToken") != std::string::npos;
            const bool second = seen->target.find("pageToken=p2") != std::string::npos;
            const bool third = seen->target.find("pageToken=p3") != std::string::npos;
            if (requests > 5) {
                testutil::LoopbackServer::reply(fd, 500, "stop");
            } else if (cycle && (second || third)) {
                testutil::LoopbackServer::reply(fd, 200,
                                                std::string(R"({"items":[],"nextPageToken":")") +
                                                    (second ? "p3" : "p2") + "\"}");
            } else if (second && !repeat) {
                testutil::LoopbackServer::reply(
                    fd, 200,
                    R"({"items":[{"name":"layers/c","size":"3","updated":"2026-12-06T01:02:05.000Z"}]})");
            } else {
                testutil::LoopbackServer::reply(
                    fd, 200,
                    std::string(R"({"items":[{"name":"layers/a","size":"3",)"
                                R"("updated":"2026-12-06T01:02:03.000Z"}])") +
                        (asks_token ? R"(,"nextPageToken":"p2"})" : "}"));
            }
        }
    });
    GcsSettings settings;
    settings.bucket = "nixery";
    settings.emulator_host = "127.0.0.1:" + std::to_string(server.port());
    auto store = make_gcs_storage(settings, dir.path());
    REQUIRE_MESSAGE(store, store.error().message);

    SUBCASE("the next page is asked for and read") {
        const auto objects = (*store)->list("layers/");
        REQUIRE_MESSAGE(objects, objects.error().message);
        REQUIRE(objects->size() == 2);
        CHECK((*objects)[1].key == "layers/c");
    }
    // A store that names a page it gave before fails the listing, after
    // `expected` requests, instead of looping.
    const auto fails_after = [&](int expected) {
        const auto objects = (*store)->list("layers/");
        REQUIRE_FALSE(objects);
        CHECK_MESSAGE(objects.error().message.find("the store gave the same page again") !=
                          std::string::npos,
                      objects.error().message);
        std::lock_guard lock(mutex);
        CHECK(requests == expected);
    };
    SUBCASE("the same token again") {
        repeat = true;
        fails_after(2);
    }
    SUBCASE("tokens that go round in a circle") {
        cycle = true;
        fails_after(3);
    }
}

TEST_SUITE_END();
