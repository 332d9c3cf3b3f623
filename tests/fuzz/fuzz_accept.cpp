// Fuzzes Accept negotiation: each input line is one Accept header.
#include "core/manifest.hpp"

#include <cstdint>
#include <string>
#include <vector>

using namespace nixery;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string input(reinterpret_cast<const char*>(data), size);
    std::vector<std::string> headers;
    std::size_t start = 0;
    for (auto nl = input.find('\n'); nl != std::string::npos; nl = input.find('\n', start)) {
        headers.push_back(input.substr(start, nl - start));
        start = nl + 1;
    }
    headers.push_back(input.substr(start));
    (void)manifest_media_type(negotiate_format(headers));
    const auto choice = negotiate_manifest(headers, LayerCompression::zstd);
    if (choice.index) {
        (void)index_media_type(*choice.index);
    }
    return 0;
}
