// Fuzzes the XML reader of S3's answers: every element of the names S3 uses,
// their text and entity decoding.
#include "storage/xml.hpp"

#include <cstdint>
#include <string_view>

using namespace nixery;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    for (const auto tag : {"Contents", "Key", "Error", "Code", "Message", "UploadId",
                           "NextContinuationToken", "IsTruncated", "ETag"}) {
        for (const auto element : xml::elements(input, tag)) {
            (void)xml::text(element, "Key");
            (void)xml::decode(element);
        }
        (void)xml::text(input, tag);
    }
    (void)xml::decode(input);
    return 0;
}
