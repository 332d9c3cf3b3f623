// Fuzzes what a request path and its parts go through before anything else
// looks at them: routing, repository name, tag and digest validation, the
// image name parser, and the header check of a response. Invariants: a name
// or tag that validates holds nothing that could escape a path, SQL or argv.
#include "core/image.hpp"
#include "core/reference.hpp"
#include "core/routes.hpp"
#include "fcgi/http.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

using namespace nixery;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const auto route = parse_route(input);
    if (is_valid_repository_name(route.name)) {
        if (route.name.find("..") != std::string::npos ||
            route.name.find_first_of(std::string_view("\0\n\r\"'\\ ", 7)) != std::string::npos) {
            std::abort();
        }
        const auto image = parse_image_name(route.name);
        for (const auto& p : image.packages) {
            (void)attribute_path(p);
        }
    }
    if (is_valid_tag(route.reference) &&
        route.reference.find_first_of(std::string_view("/\0\n ", 4)) != std::string::npos) {
        std::abort();
    }
    (void)check_digest(route.reference);
    (void)check_digest(input);
    (void)parse_image_name(input);
    (void)error_json(name_invalid(input));
    const auto split = input.find('\n');
    const auto name = input.substr(0, split);
    const auto value =
        split == std::string_view::npos ? std::string_view() : input.substr(split + 1);
    if (is_safe_header(name, value) &&
        value.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) {
        std::abort();
    }
    return 0;
}
