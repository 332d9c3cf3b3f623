#include "util/decompress.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <doctest/doctest.h>
#include <memory>
#include <string>
#include <vector>

using namespace nixery;

TEST_SUITE_BEGIN("util");

namespace {

// `text` compressed with a libarchive filter (ARCHIVE_FILTER_*), as the raw
// stream a channel's store-paths.xz or a compressed narinfo file is.
std::string compressed(const std::string& text, int filter) {
    std::unique_ptr<archive, int (*)(archive*)> a(archive_write_new(), archive_write_free);
    REQUIRE(archive_write_add_filter(a.get(), filter) == ARCHIVE_OK);
    REQUIRE(archive_write_set_format_raw(a.get()) == ARCHIVE_OK);
    std::vector<char> out(text.size() + (1 << 16));
    std::size_t used = 0;
    REQUIRE(archive_write_open_memory(a.get(), out.data(), out.size(), &used) == ARCHIVE_OK);
    std::unique_ptr<archive_entry, void (*)(archive_entry*)> entry(archive_entry_new(),
                                                                   archive_entry_free);
    archive_entry_set_filetype(entry.get(), AE_IFREG);
    REQUIRE(archive_write_header(a.get(), entry.get()) == ARCHIVE_OK);
    REQUIRE(archive_write_data(a.get(), text.data(), text.size()) ==
            static_cast<la_ssize_t>(text.size()));
    REQUIRE(archive_write_close(a.get()) == ARCHIVE_OK);
    return std::string(out.data(), used);
}

std::vector<std::string> lines_of(std::string_view body, std::size_t max = 1 << 30) {
    std::vector<std::string> lines;
    const auto read =
        decompress_lines(body, max, [&](std::string_view line) { lines.emplace_back(line); });
    REQUIRE(read);
    return lines;
}

} // namespace

TEST_CASE("decompress_lines reads plain and compressed lists alike") {
    // A line longer than one decompressed piece (64 KiB) comes whole, and
    // a last line without '\n' comes too.
    const std::string long_line(200000, 'a');
    const std::string text = "/nix/store/one\n" + long_line + "\n\n/nix/store/last";
    const std::vector<std::string> expected{"/nix/store/one", long_line, "", "/nix/store/last"};
    CHECK(lines_of(text) == expected);
    for (const int filter :
         {ARCHIVE_FILTER_XZ, ARCHIVE_FILTER_GZIP, ARCHIVE_FILTER_BZIP2, ARCHIVE_FILTER_ZSTD}) {
        CAPTURE(filter);
        const auto body = compressed(text, filter);
        CHECK(body.size() < text.size() / 10);
        CHECK(lines_of(body) == expected);
    }
    CHECK(lines_of("").empty());
}

TEST_CASE("decompress_each stops at its bound and at damaged input") {
    const std::string text(1 << 20, 'z');
    const auto body = compressed(text, ARCHIVE_FILTER_XZ);
    std::size_t seen = 0;
    const auto whole =
        decompress_each(body, text.size(), [&](std::string_view piece) { seen += piece.size(); });
    CHECK(whole);
    CHECK(seen == text.size());

    // A small download that decompresses to more than the bound (a
    // compression bomb) is refused, not read to its end.
    seen = 0;
    const auto bounded =
        decompress_each(body, 1000, [&](std::string_view piece) { seen += piece.size(); });
    REQUIRE_FALSE(bounded);
    CHECK(bounded.error().message.find("larger than 1000 bytes") != std::string::npos);
    CHECK(seen <= 1000);

    // A stream cut short is an error, not a short list.
    const auto cut =
        decompress_each(body.substr(0, body.size() / 2), text.size(), [](std::string_view) {});
    CHECK_FALSE(cut);
}

TEST_SUITE_END();
