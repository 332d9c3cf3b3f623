#include "builder/records.hpp"

#include <doctest/doctest.h>

using namespace nixery;

TEST_SUITE_BEGIN("builder");

TEST_CASE("shared build-cache records round-trip and reject garbage") {
    const std::string d(64, 'a');
    const LayerRecord layer{"sha256:" + d, "sha256:" + std::string(64, 'b'), 7};
    const auto decoded = decode_layer_record(encode_layer_record(layer));
    REQUIRE(decoded);
    CHECK(decoded->diff_id == layer.diff_id);
    CHECK(decoded->size == 7);
    CHECK_FALSE(decode_layer_record(R"({"digest":"../../etc","diffId":"x","size":1})"));

    ImageRecord image{"sha256:" + d, "{\"m\":1}",   "sha256:" + d,
                      "{}",          "sha256:" + d, {"sha256:" + d}};
    const auto img = decode_image_record(encode_image_record(image));
    REQUIRE(img);
    CHECK(img->docker_manifest == image.docker_manifest);
    CHECK(img->blobs == image.blobs);
    CHECK_FALSE(decode_image_record("not json"));
    CHECK(layer_record_key("k") == "cache/layers/k.json");
    CHECK(record_name(image_record_key("k"), k_image_records) == "k");
    CHECK(record_name(layer_record_key("k"), k_image_records).empty());
    CHECK(record_name("cache/images/.json", k_image_records).empty());
    CHECK(record_name("cache/images/k.txt", k_image_records).empty());
}

TEST_CASE("an index record lists its manifests, and is named by the index's digest") {
    const std::vector<std::string> manifests{"sha256:" + std::string(64, 'a'),
                                             "sha256:" + std::string(64, 'b')};
    CHECK(decode_index_record(encode_index_record(manifests)) == manifests);
    const auto index = "sha256:" + std::string(64, 'c');
    const auto key = index_record_key(index);
    CHECK(key == "cache/indexes/" + std::string(64, 'c') + ".json");
    CHECK(record_name(key, k_index_records) == std::string(64, 'c'));
    CHECK_FALSE(decode_index_record(R"({"manifests":["sha256:../../etc"]})"));
    CHECK_FALSE(decode_index_record(R"({"manifests":"sha256:x"})"));
    CHECK_FALSE(decode_index_record("[]"));
    CHECK_FALSE(decode_index_record("{"));
}

TEST_SUITE_END();
