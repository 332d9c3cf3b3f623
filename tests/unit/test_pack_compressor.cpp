#include "pack/compressor.hpp"
#include "testutil.hpp"
#include "util/subprocess.hpp"

#include <doctest/doctest.h>
#include <random>
#include <zlib.h>
#include <zstd.h>

using namespace nixery;
using testutil::TempDir;

namespace {

// Text, incompressible bytes (deflate stores those) and zeros, so the
// blocks end in every kind of deflate block.
std::string sample(std::size_t size) {
    std::string s;
    std::mt19937 rng(42);
    while (s.size() < size) {
        const auto kind = s.size() / 300000 % 3;
        for (int i = 0; i < 100000 && s.size() < size; ++i) {
            s += kind == 0   ? static_cast<char>("nix store layer "[i % 16] + (i / 1000) % 3)
                 : kind == 1 ? static_cast<char>(rng())
                             : '\0';
        }
    }
    return s;
}

std::string compress(LayerCompression c, unsigned threads, const std::string& input) {
    std::string out;
    auto z = make_compressor(c, threads, [&](std::string_view piece) -> Result<void> {
        out += piece;
        return {};
    });
    REQUIRE(z);
    // Uneven pieces, as the tar writer hands them over.
    std::size_t pos = 0;
    for (std::size_t step = 1; pos < input.size(); step = step * 3 + 1) {
        const auto n = std::min(step, input.size() - pos);
        REQUIRE((*z)->write({reinterpret_cast<const unsigned char*>(input.data() + pos), n}));
        pos += n;
    }
    REQUIRE((*z)->finish());
    return out;
}

// zlib's gunzip of ONE member; `rest` gets what follows it.
std::string gunzip_member(const std::string& blob, std::size_t& rest) {
    z_stream z{};
    REQUIRE(inflateInit2(&z, 31) == Z_OK);
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(blob.data()));
    z.avail_in = static_cast<uInt>(blob.size());
    std::string out;
    std::vector<char> buf(1 << 16);
    int rc = Z_OK;
    while (rc == Z_OK) {
        z.next_out = reinterpret_cast<Bytef*>(buf.data());
        z.avail_out = static_cast<uInt>(buf.size());
        rc = inflate(&z, Z_NO_FLUSH);
        out.append(buf.data(), buf.size() - z.avail_out);
    }
    CHECK(rc == Z_STREAM_END);
    rest = z.avail_in;
    inflateEnd(&z);
    return out;
}

std::string run_filter(const std::vector<std::string>& argv) {
    ProcessSpec spec;
    spec.argv = argv;
    auto r = run_process(spec);
    REQUIRE(r);
    REQUIRE_MESSAGE(r->ok(), r->err_tail);
    return r->out;
}

} // namespace

TEST_SUITE_BEGIN("pack");

TEST_CASE("make_compressor") {
    TempDir dir;
    for (const std::size_t size :
         {std::size_t{0}, std::size_t{1}, std::size_t{1} << 20, (std::size_t{5} << 20) + 17}) {
        CAPTURE(size);
        const auto input = sample(size);

        SUBCASE("gzip: one member, the same bytes on 1 and N threads, read by zlib, gzip, "
                "pigz") {
            const auto one = compress(LayerCompression::gzip, 1, input);
            CHECK(compress(LayerCompression::gzip, 2, input) == one);
            CHECK(compress(LayerCompression::gzip, 5, input) == one);
            std::size_t rest = 1;
            CHECK(gunzip_member(one, rest) == input);
            CHECK(rest == 0);
            // No timestamp, no name, OS Unix.
            CHECK(one.substr(0, 10) == std::string("\x1f\x8b\x08\0\0\0\0\0\0\x03", 10));
            const auto file = dir / "blob.gz";
            testutil::write_file(file, one);
            CHECK(run_filter({"gzip", "-dc", file.string()}) == input);
            CHECK(run_filter({"pigz", "-dc", file.string()}) == input);
        }
        SUBCASE("zstd: the same bytes on 1 and N threads, read by libzstd and zstd") {
            const auto one = compress(LayerCompression::zstd, 1, input);
            CHECK(compress(LayerCompression::zstd, 3, input) == one);
            std::string back(input.size(), '\0');
            const auto n = ZSTD_decompress(back.data(), back.size(), one.data(), one.size());
            REQUIRE_FALSE(ZSTD_isError(n));
            CHECK(n == input.size());
            CHECK(back == input);
            const auto file = dir / "blob.zst";
            testutil::write_file(file, one);
            CHECK(run_filter({"zstd", "-dc", file.string()}) == input);
        }
    }
}

TEST_CASE("default_pack_threads") {
    CHECK(default_pack_threads() >= 1);
    CHECK(default_pack_threads() <= 8);
}

TEST_SUITE_END();
