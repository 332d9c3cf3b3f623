#include "core/manifest.hpp"

#include <doctest/doctest.h>
#include <rapidjson/document.h>

using namespace nixery;

TEST_SUITE_BEGIN("core");

TEST_CASE("negotiate_format") {
    const std::string docker(media_type::docker_manifest);
    const std::string oci(media_type::oci_manifest);
    CHECK(negotiate_format({}) == ManifestFormat::docker);
    CHECK(negotiate_format({"*/*"}) == ManifestFormat::docker);
    CHECK(negotiate_format({oci}) == ManifestFormat::oci);
    CHECK(negotiate_format({"application/vnd.oci.image.index.v1+json"}) == ManifestFormat::oci);
    CHECK(negotiate_format({oci, docker}) == ManifestFormat::docker);
    CHECK(negotiate_format({oci + ", " + docker}) == ManifestFormat::docker);
    CHECK(negotiate_format({oci + "; q=0.5"}) == ManifestFormat::oci);
    CHECK(negotiate_format({oci, docker + ";q=0"}) == ManifestFormat::oci);
    // q=0 in any spelling refuses a type.
    CHECK(negotiate_format({oci + ";q=0.0", docker}) == ManifestFormat::docker);
    CHECK(negotiate_format({oci + "; q=0.000"}) == ManifestFormat::docker);
    CHECK(negotiate_format({"APPLICATION/VND.OCI.IMAGE.MANIFEST.V1+JSON"}) == ManifestFormat::oci);
    SUBCASE("with zstd layers, the first of the two types named") {
        const auto zstd = LayerCompression::zstd;
        CHECK(negotiate_format({oci + ", " + docker}, zstd) == ManifestFormat::oci);
        CHECK(negotiate_format({oci, docker}, zstd) == ManifestFormat::oci);
        CHECK(negotiate_format({docker + ", " + oci}, zstd) == ManifestFormat::docker);
        CHECK(negotiate_format({oci + ";q=0, " + docker}, zstd) == ManifestFormat::docker);
        CHECK(negotiate_format({}, zstd) == ManifestFormat::docker);
    }
    SUBCASE("with zstd layers, the Docker engine keeps the Docker manifest in any order") {
        const auto zstd = LayerCompression::zstd;
        // Docker 20.10's six Accept lines: it starts this cycle anywhere.
        const std::vector<std::string> engine{
            docker,
            std::string(media_type::docker_manifest_list),
            std::string(media_type::oci_index),
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            "application/json",
            oci};
        for (std::size_t start = 0; start < engine.size(); ++start) {
            std::vector<std::string> lines(engine.begin() + static_cast<long>(start), engine.end());
            lines.insert(lines.end(), engine.begin(), engine.begin() + static_cast<long>(start));
            CAPTURE(lines.front());
            CHECK(negotiate_format(lines, zstd) == ManifestFormat::docker);
        }
        // containers/image (podman 4.3, skopeo 1.9) in its fixed order.
        const std::vector<std::string> podman{
            oci,
            docker,
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            "application/vnd.docker.distribution.manifest.v1+json",
            std::string(media_type::docker_manifest_list),
            std::string(media_type::oci_index)};
        CHECK(negotiate_format(podman, zstd) == ManifestFormat::oci);
        // Only OCI accepted: OCI, whatever else is listed.
        CHECK(negotiate_format({"application/json", oci}, zstd) == ManifestFormat::oci);
    }
}

TEST_CASE("negotiate_manifest: the index of the format, else the other one, else none") {
    const std::string docker(media_type::docker_manifest);
    const std::string oci(media_type::oci_manifest);
    const std::string list(media_type::docker_manifest_list);
    const std::string index(media_type::oci_index);
    // containerd and Docker: every type, the Docker manifest first.
    auto c = negotiate_manifest({docker + ", " + list + ", " + oci + ", " + index + ", */*"});
    CHECK(c.format == ManifestFormat::docker);
    REQUIRE(c.index);
    CHECK(*c.index == ManifestFormat::docker);
    c = negotiate_manifest({oci, index});
    CHECK(c.format == ManifestFormat::oci);
    CHECK(c.index == ManifestFormat::oci);
    c = negotiate_manifest({docker, oci});
    CHECK_FALSE(c.index);
    c = negotiate_manifest({});
    CHECK(c.format == ManifestFormat::docker);
    CHECK_FALSE(c.index);
    // Only the other kind of index accepted: that one.
    c = negotiate_manifest({docker + ", " + index});
    CHECK(c.format == ManifestFormat::docker);
    CHECK(c.index == ManifestFormat::oci);
    c = negotiate_manifest({docker + ", " + list + ";q=0"});
    CHECK_FALSE(c.index);
    CHECK(is_manifest_media_type(list));
    CHECK(is_manifest_media_type(index));
    CHECK(is_manifest_media_type(docker));
    CHECK_FALSE(is_manifest_media_type(media_type::docker_config));
}

TEST_CASE("index_json: one entry per platform, annotations in OCI only") {
    const std::vector<IndexEntry> entries{{Arch::amd64, "sha256:" + std::string(64, 'a'), 100},
                                          {Arch::arm64, "sha256:" + std::string(64, 'b'), 200}};
    const Labels annotations{{"org.opencontainers.image.title", "shell"}};
    const auto oci = index_json(ManifestFormat::oci, entries, annotations);
    CHECK(oci == index_json(ManifestFormat::oci, entries, annotations)); // deterministic
    rapidjson::Document d;
    d.Parse(oci.c_str());
    REQUIRE_FALSE(d.HasParseError());
    CHECK(d["schemaVersion"].GetInt() == 2);
    CHECK(std::string(d["mediaType"].GetString()) == media_type::oci_index);
    REQUIRE(d["manifests"].Size() == 2);
    const auto& arm = d["manifests"][1];
    CHECK(std::string(arm["mediaType"].GetString()) == media_type::oci_manifest);
    CHECK(arm["size"].GetUint64() == 200);
    CHECK(std::string(arm["digest"].GetString()) == entries[1].digest);
    CHECK(std::string(arm["platform"]["architecture"].GetString()) == "arm64");
    CHECK(std::string(arm["platform"]["os"].GetString()) == "linux");
    CHECK(std::string(arm["platform"]["variant"].GetString()) == "v8");
    CHECK_FALSE(d["manifests"][0]["platform"].HasMember("variant"));
    CHECK(std::string(d["annotations"]["org.opencontainers.image.title"].GetString()) == "shell");
    CHECK(document_media_type(oci) == media_type::oci_index);

    rapidjson::Document l;
    l.Parse(index_json(ManifestFormat::docker, entries, annotations).c_str());
    CHECK(std::string(l["mediaType"].GetString()) == media_type::docker_manifest_list);
    CHECK(std::string(l["manifests"][0]["mediaType"].GetString()) == media_type::docker_manifest);
    CHECK_FALSE(l.HasMember("annotations"));

    CHECK(manifest_annotations_of(oci) == annotations);
    CHECK(manifest_annotations_of("[]").empty());
}

TEST_CASE("config_json and manifest_json") {
    ImageConfig cfg;
    cfg.arch = Arch::arm64;
    cfg.bash = true;
    cfg.layers = {
        {"sha256:" + std::string(64, '1'), "sha256:" + std::string(64, '2'), 10, "nixery: a"},
        {"sha256:" + std::string(64, '3'), "sha256:" + std::string(64, '4'), 20, "nixery: b"}};
    const auto config = config_json(cfg);

    rapidjson::Document c;
    c.Parse(config.c_str());
    REQUIRE_FALSE(c.HasParseError());
    CHECK(std::string(c["architecture"].GetString()) == "arm64");
    CHECK(std::string(c["os"].GetString()) == "linux");
    CHECK(c["rootfs"]["diff_ids"].Size() == 2);
    CHECK(std::string(c["rootfs"]["diff_ids"][1].GetString()) == cfg.layers[1].diff_id);
    CHECK(std::string(c["config"]["Cmd"][0].GetString()) == "bash");
    CHECK(std::string(c["config"]["Env"][0].GetString()).rfind("PATH=", 0) == 0);
    CHECK(std::string(c["config"]["Env"][1].GetString()).rfind("SSL_CERT_FILE=", 0) == 0);
    CHECK(c["history"].Size() == 2);
    CHECK(std::string(c["history"][0]["created_by"].GetString()) == "nixery: a");

    cfg.bash = false;
    rapidjson::Document c2;
    c2.Parse(config_json(cfg).c_str());
    CHECK_FALSE(c2["config"].HasMember("Cmd"));
    CHECK(config_json(cfg) == config_json(cfg)); // deterministic

    CHECK_FALSE(c2["config"].HasMember("Labels")); // no labels: no member
    cfg.labels = {{"a.b", "1"}, {"c.d", "x\"y"}};
    rapidjson::Document c3;
    c3.Parse(config_json(cfg).c_str());
    REQUIRE_FALSE(c3.HasParseError());
    CHECK(c3["config"]["Labels"].MemberCount() == 2);
    CHECK(std::string(c3["config"]["Labels"]["c.d"].GetString()) == "x\"y");

    const Labels annotations{{"org.opencontainers.image.title", "hello"}};
    for (auto format : {ManifestFormat::docker, ManifestFormat::oci}) {
        const auto m =
            manifest_json(format, "sha256:" + std::string(64, 'c'), 123, cfg.layers, annotations);
        rapidjson::Document d;
        d.Parse(m.c_str());
        REQUIRE_FALSE(d.HasParseError());
        CHECK(d["schemaVersion"].GetInt() == 2);
        CHECK(std::string(d["mediaType"].GetString()) == manifest_media_type(format));
        CHECK(std::string(d["config"]["mediaType"].GetString()) == config_media_type(format));
        CHECK(d["config"]["size"].GetUint64() == 123);
        CHECK(d["layers"].Size() == 2);
        CHECK(std::string(d["layers"][0]["mediaType"].GetString()) == layer_media_type(format));
        CHECK(std::string(d["layers"][1]["digest"].GetString()) == cfg.layers[1].digest);
        CHECK(d["layers"][1]["size"].GetUint64() == 20);
        // The Docker format has no annotations.
        CHECK(d.HasMember("annotations") == (format == ManifestFormat::oci));
        if (format == ManifestFormat::oci) {
            CHECK(std::string(d["annotations"]["org.opencontainers.image.title"].GetString()) ==
                  "hello");
            const auto none =
                manifest_json(format, "sha256:" + std::string(64, 'c'), 123, cfg.layers, {});
            CHECK(none.find("annotations") == std::string::npos);
        }
    }

    cfg.layers[1].compression = LayerCompression::zstd;
    rapidjson::Document z;
    z.Parse(
        manifest_json(ManifestFormat::oci, "sha256:" + std::string(64, 'c'), 123, cfg.layers, {})
            .c_str());
    CHECK(std::string(z["layers"][0]["mediaType"].GetString()) == media_type::oci_layer);
    CHECK(std::string(z["layers"][1]["mediaType"].GetString()) ==
          "application/vnd.oci.image.layer.v1.tar+zstd");
}

TEST_CASE("describe_layer") {
    const std::string h(32, 'x');
    CHECK(describe_layer({"/nix/store/" + h + "-hello-2.12", "/nix/store/" + h + "-glibc-2.40"}) ==
          "nixery: hello-2.12, glibc-2.40");
    std::vector<std::string> many(12, "/nix/store/" + h + "-p");
    CHECK(describe_layer(many, 2) == "nixery: p, p and 10 more");
}

TEST_CASE("document_media_type and manifest_layer_count") {
    CHECK(document_media_type(R"({"mediaType":"application/vnd.oci.image.index.v1+json"})") ==
          "application/vnd.oci.image.index.v1+json");
    CHECK(document_media_type(R"({"mediaType":3})").empty());
    // A configuration has no "mediaType"; the builder stores it as Docker's.
    CHECK(document_media_type(
              R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}})") ==
          media_type::docker_config);
    CHECK(document_media_type(R"({"rootfs":"x"})").empty());
    CHECK(document_media_type(R"({"hello":1})").empty());
    CHECK(document_media_type("[1]").empty());
    CHECK(document_media_type("{").empty());
    CHECK(manifest_layer_count(R"({"layers":[{},{}]})") == 2);
    CHECK(manifest_layer_count(R"({"layers":{}})") == 0);
    CHECK(manifest_layer_count("null") == 0);
}

TEST_SUITE_END();
