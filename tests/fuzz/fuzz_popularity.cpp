// Fuzzes the popularity JSON (NIX_POPULARITY_URL, an operator's file).
#include "core/popularity.hpp"

#include <cstdint>
#include <string_view>

using namespace nixery;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    auto parsed = Popularity::parse(input);
    if (parsed) {
        (void)parsed->of_store_path("/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-glibc-2.40-66");
        (void)parsed->of_store_path(input);
    }
    return 0;
}
