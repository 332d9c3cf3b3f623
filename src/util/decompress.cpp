#include "util/decompress.hpp"

#include <archive.h>
#include <memory>
#include <string>

namespace nixery {

Result<void> decompress_each(std::string_view body, std::size_t max,
                             const std::function<void(std::string_view)>& on_piece) {
    if (body.empty()) {
        return {};
    }
    std::unique_ptr<archive, int (*)(archive*)> a(archive_read_new(), archive_read_free);
    archive_read_support_filter_xz(a.get());
    archive_read_support_filter_gzip(a.get());
    archive_read_support_filter_bzip2(a.get());
    archive_read_support_filter_zstd(a.get());
    archive_read_support_format_raw(a.get());
    archive_entry* entry = nullptr;
    if (archive_read_open_memory(a.get(), body.data(), body.size()) != ARCHIVE_OK ||
        archive_read_next_header(a.get(), &entry) != ARCHIVE_OK) {
        return fail(std::string("decompress failed: ") + archive_error_string(a.get()));
    }
    char buf[1 << 16];
    std::size_t total = 0;
    for (;;) {
        const auto n = archive_read_data(a.get(), buf, sizeof buf);
        if (n < 0) {
            return fail(std::string("decompress failed: ") + archive_error_string(a.get()));
        }
        if (n == 0) {
            return {};
        }
        total += static_cast<std::size_t>(n);
        if (total > max) {
            return fail("larger than " + std::to_string(max) + " bytes decompressed");
        }
        on_piece(std::string_view(buf, static_cast<std::size_t>(n)));
    }
}

Result<void> decompress_lines(std::string_view body, std::size_t max,
                              const std::function<void(std::string_view)>& on_line) {
    // An unfinished line waits in `carry` for the next piece.
    std::string carry;
    TRY(decompress_each(body, max, [&](std::string_view piece) {
        carry.append(piece);
        std::size_t start = 0;
        for (auto nl = carry.find('\n'); nl != std::string::npos; nl = carry.find('\n', start)) {
            on_line(std::string_view(carry).substr(start, nl - start));
            start = nl + 1;
        }
        carry.erase(0, start);
    }));
    if (!carry.empty()) {
        on_line(carry);
    }
    return {};
}

} // namespace nixery
