#include "pack/tar.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

namespace nixery {

namespace {

constexpr std::size_t k_name = 100;
constexpr std::size_t k_prefix = 155;
constexpr std::uint64_t k_max_octal_size = 077777777777ULL; // 11 octal digits

// Field offsets and sizes of a ustar header.
struct Field {
    std::size_t offset;
    std::size_t size;
};
constexpr Field f_name{0, 100}, f_mode{100, 8}, f_uid{108, 8}, f_gid{116, 8}, f_size{124, 12},
    f_mtime{136, 12}, f_chksum{148, 8}, f_type{156, 1}, f_link{157, 100}, f_magic{257, 6},
    f_version{263, 2}, f_devmajor{329, 8}, f_devminor{337, 8}, f_prefix{345, 155};

void put_bytes(std::string& block, Field f, std::string_view value) {
    if (value.empty()) {
        return;
    }
    std::memcpy(block.data() + f.offset, value.data(), std::min(value.size(), f.size));
}

// Zero-padded octal, terminated by NUL, filling the field.
void put_octal(std::string& block, Field f, std::uint64_t value) {
    std::string digits(f.size - 1, '0');
    for (std::size_t i = digits.size(); i-- > 0 && value != 0; value >>= 3) {
        digits[i] = static_cast<char>('0' + (value & 7));
    }
    put_bytes(block, f, digits);
}

bool is_utf8(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        std::size_t len = c < 0x80         ? 1
                          : (c >> 5) == 6  ? 2
                          : (c >> 4) == 14 ? 3
                          : (c >> 3) == 30 ? 4
                                           : 0;
        if (len == 0 || i + len > s.size()) {
            return false;
        }
        std::uint32_t cp = len == 1 ? c : c & (0x7f >> len);
        for (std::size_t k = 1; k < len; ++k) {
            const auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc >> 6) != 2) {
                return false;
            }
            cp = (cp << 6) | (cc & 0x3f);
        }
        // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
        constexpr std::uint32_t k_min[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < k_min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return false;
        }
        i += len;
    }
    return true;
}

// "<length> key=value\n", where length counts the whole record.
std::string pax_record(std::string_view key, std::string_view value) {
    const auto body = key.size() + value.size() + 3; // ' ', '=', '\n'
    std::size_t len = body + 1;
    while (std::to_string(len).size() + body != len) {
        ++len;
    }
    return std::to_string(len) + " " + std::string(key) + "=" + std::string(value) + "\n";
}

// Where a name splits into a ustar prefix and name, or npos.
std::size_t ustar_split(std::string_view name) {
    if (name.size() <= k_name) {
        return 0;
    }
    // The prefix ends at a '/' that leaves at most 100 bytes after it.
    for (auto slash = name.find('/', name.size() - k_name - 1); slash != std::string_view::npos;
         slash = name.find('/', slash + 1)) {
        if (slash > k_prefix) {
            break;
        }
        if (slash > 0 && slash + 1 < name.size() && name.size() - slash - 1 <= k_name) {
            return slash;
        }
    }
    return std::string_view::npos;
}

std::string ustar_block(std::string_view name, std::string_view prefix, char type, mode_t mode,
                        std::uint64_t size, std::uint64_t mtime, std::string_view link) {
    std::string block(k_tar_block, '\0');
    put_bytes(block, f_name, name);
    put_octal(block, f_mode, mode & 07777);
    put_octal(block, f_uid, 0);
    put_octal(block, f_gid, 0);
    put_octal(block, f_size, size);
    put_octal(block, f_mtime, mtime);
    block[f_type.offset] = type;
    put_bytes(block, f_link, link);
    put_bytes(block, f_magic, std::string_view("ustar\0", 6));
    put_bytes(block, f_version, "00");
    put_octal(block, f_devmajor, 0);
    put_octal(block, f_devminor, 0);
    put_bytes(block, f_prefix, prefix);
    std::fill_n(block.begin() + static_cast<std::ptrdiff_t>(f_chksum.offset), f_chksum.size, ' ');
    std::uint32_t sum = 0;
    for (const char c : block) {
        sum += static_cast<unsigned char>(c);
    }
    // Six octal digits, NUL, space: what most writers produce.
    std::string chk(6, '0');
    for (std::size_t i = 6; i-- > 0; sum >>= 3) {
        chk[i] = static_cast<char>('0' + (sum & 7));
    }
    put_bytes(block, f_chksum, chk + std::string("\0 ", 2));
    return block;
}

} // namespace

std::size_t tar_padding(std::uint64_t size) {
    return static_cast<std::size_t>((k_tar_block - size % k_tar_block) % k_tar_block);
}

std::string_view tar_end() {
    static const std::string zeros(2 * k_tar_block, '\0');
    return zeros;
}

std::string tar_header(const TarHeader& h) {
    // Directories are named with a trailing '/', as tar writes them.
    std::string name(h.path);
    if (h.type == TarType::directory) {
        name += '/';
    }
    const auto size = h.type == TarType::file ? h.size : 0;

    std::vector<std::pair<std::string_view, std::string>> records; // sorted by key
    const auto split = ustar_split(name);
    const bool long_name = split == std::string_view::npos;
    const bool long_link = h.link.size() > k_name;
    const bool big = size > k_max_octal_size;
    if ((long_name && !is_utf8(name)) || (long_link && !is_utf8(h.link))) {
        records.emplace_back("hdrcharset", "BINARY");
    }
    if (long_link) {
        records.emplace_back("linkpath", std::string(h.link));
    }
    if (long_name) {
        records.emplace_back("path", name);
    }
    if (big) {
        records.emplace_back("size", std::to_string(size));
    }

    std::string out;
    if (!records.empty()) {
        std::string pax;
        for (const auto& [key, value] : records) {
            pax += pax_record(key, value);
        }
        out = ustar_block("././@PaxHeader", {}, 'x', 0644, pax.size(), h.mtime, {});
        out += pax;
        out.append(tar_padding(pax.size()), '\0');
    }
    std::string_view ustar_name = name;
    std::string_view ustar_prefix;
    if (long_name) {
        ustar_name = std::string_view(name).substr(0, k_name);
    } else if (split > 0) {
        ustar_prefix = std::string_view(name).substr(0, split);
        ustar_name = std::string_view(name).substr(split + 1);
    }
    out += ustar_block(ustar_name, ustar_prefix, static_cast<char>(h.type), h.mode, big ? 0 : size,
                       h.mtime, h.link.substr(0, std::min(h.link.size(), k_name)));
    return out;
}

} // namespace nixery
