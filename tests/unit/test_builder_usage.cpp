#include "builder/lookup.hpp"
#include "builder/records.hpp"
#include "builder/usage.hpp"
#include "storage/filesystem.hpp"
#include "testutil.hpp"

#include <ctime>
#include <doctest/doctest.h>

using namespace nixery;
using testutil::TempDir;

namespace {

constexpr std::int64_t k_day = 86400;

std::string digest(char c) {
    return "sha256:" + std::string(64, c);
}

std::int64_t last_used(BuildCache& cache, const std::string& closure_key) {
    auto s = cache.db().prepare("SELECT last_used_at FROM images WHERE closure_key = ?1");
    REQUIRE(s);
    s->bind(1, closure_key);
    REQUIRE(*s->step());
    return s->integer(0);
}

struct Fixture {
    TempDir dir;
    std::unique_ptr<StorageBackend> storage = make_filesystem_storage(dir / "storage");
    std::optional<BuildCache> cache;
    // Config 'c', Docker manifest 'd', OCI manifest 'e', layer 'a': hex, so the
    // shared record reads back.
    ImageRecord image{digest('c'), "{}", digest('d'), "{}", digest('e'), {digest('a')}};

    Fixture() {
        REQUIRE(storage->check());
        auto db = Db::open(dir / "cache.sqlite", "sql");
        REQUIRE_MESSAGE(db, (db ? "" : db.error().message));
        cache.emplace(std::move(*db));
    }
    // An image this instance built `when`, with its shared record and
    // blobs.
    void built(std::int64_t when) {
        REQUIRE(cache->record_image("closure", image, when));
        REQUIRE(storage->put(image_record_key("closure"), encode_image_record(image), "x"));
        for (const char c : {'a', 'c', 'd', 'e'}) {
            REQUIRE(storage->put(blob_key(std::string(64, c)), "{}", "x"));
        }
    }
    std::optional<std::string> marker(char c) {
        auto body = storage->fetch(use_marker_key(digest(c)));
        REQUIRE(body);
        return *body;
    }
};

} // namespace

TEST_SUITE_BEGIN("builder");

TEST_CASE("use_marker_key") {
    CHECK(use_marker_key(digest('a')) == "cache/used/" + std::string(64, 'a'));
}

TEST_CASE("record_image_use") {
    Fixture f;
    const std::int64_t now = 1800000000;
    f.built(now - 10 * k_day);

    SUBCASE("a use moves the last use and writes a marker once a day") {
        CHECK(record_image_use(*f.cache, *f.storage, "closure", f.image, now) ==
              SharedImage::present);
        CHECK(last_used(*f.cache, "closure") == now);
        CHECK(f.marker('d') == std::to_string(now) + "\n");
        CHECK_FALSE(f.marker('e'));
        // Within the day: no new marker, whatever the storage holds.
        REQUIRE(f.storage->remove(use_marker_key(digest('d'))));
        CHECK(record_image_use(*f.cache, *f.storage, "closure", f.image, now + k_day - 1) ==
              SharedImage::present);
        CHECK_FALSE(f.marker('d'));
        CHECK(last_used(*f.cache, "closure") == now + k_day - 1);
        CHECK(record_image_use(*f.cache, *f.storage, "closure", f.image, now + k_day) ==
              SharedImage::present);
        CHECK(f.marker('d') == std::to_string(now + k_day) + "\n");
    }
    SUBCASE("an image another instance's gc collected is gone") {
        REQUIRE(f.storage->remove(image_record_key("closure")));
        CHECK(record_image_use(*f.cache, *f.storage, "closure", f.image, now) == SharedImage::gone);
        // The marker goes before the look, so a gc on another instance that
        // has not deleted the record yet sees the use (gc/collector.cpp).
        CHECK(f.marker('d') == std::to_string(now) + "\n");
    }
    SUBCASE("so is one whose shared record cannot be read") {
        // gc on another instance cannot tell what such an image references,
        // and keeps every blob until the record is written anew.
        REQUIRE(f.storage->put(image_record_key("closure"), "{\"config\":", "application/json"));
        CHECK(record_image_use(*f.cache, *f.storage, "closure", f.image, now) == SharedImage::gone);
    }
    SUBCASE("so is one whose config, a manifest or a layer it took") {
        // The blobs as a shared record lists them, and as this instance's
        // database does (find_image gives none: image_blobs has them).
        for (const bool from_database : {false, true}) {
            for (const char c : {'a', 'c', 'd', 'e'}) {
                CAPTURE(from_database);
                CAPTURE(c);
                Fixture g;
                g.built(now - 10 * k_day);
                auto image = g.image;
                if (from_database) {
                    image.blobs.clear();
                }
                REQUIRE(g.storage->remove(blob_key(std::string(64, c))));
                CHECK(record_image_use(*g.cache, *g.storage, "closure", image, now) ==
                      SharedImage::gone);
            }
        }
    }
}

TEST_CASE("record_manifest_pull") {
    Fixture f;
    const auto now = static_cast<std::int64_t>(std::time(nullptr));
    f.built(now - 10 * k_day);

    SUBCASE("a pull of either manifest is a use of its image") {
        record_manifest_pull(*f.cache, *f.storage, digest('e'));
        CHECK(last_used(*f.cache, "closure") >= now);
        CHECK(f.marker('e'));
        CHECK_FALSE(f.marker('d'));
    }
    SUBCASE("a manifest this instance does not know still gets its marker") {
        record_manifest_pull(*f.cache, *f.storage, digest('9'));
        CHECK(f.marker('9'));
        CHECK(last_used(*f.cache, "closure") == now - 10 * k_day);
    }
}

TEST_CASE("find_image and find_layer: a shared record that does not parse counts as absent") {
    // The image or layer is then built or packed again, and its record
    // written anew, rather than every pull of it failing.
    Fixture f;
    REQUIRE(f.storage->put(image_record_key("closure"), "{not json", "application/json"));
    const auto image = find_image(*f.cache, *f.storage, "closure");
    REQUIRE_MESSAGE(image, (image ? "" : image.error().message));
    CHECK_FALSE(*image);
    REQUIRE(f.storage->put(layer_record_key("layer"), "[]", "application/json"));
    const auto layer = find_layer(*f.cache, *f.storage, "layer");
    REQUIRE(layer);
    CHECK_FALSE(*layer);
}

TEST_CASE("record_image_use: a use that found the image gone is not the day's use") {
    // So the next use looks again (and builds the image again).
    Fixture f;
    const std::int64_t now = 1800000000;
    f.built(now - 10 * k_day);
    REQUIRE(f.storage->remove(image_record_key("closure")));
    CHECK(record_image_use(*f.cache, *f.storage, "closure", f.image, now) == SharedImage::gone);
    CHECK(record_image_use(*f.cache, *f.storage, "closure", f.image, now + 1) == SharedImage::gone);
}

TEST_SUITE_END();
