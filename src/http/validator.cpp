#include "http/validator.hpp"

namespace nixery {

std::string content_validator(const HttpResponse& response) {
    if (const auto etag = response.header("etag"); !etag.empty()) {
        return "etag " + etag;
    }
    if (const auto modified = response.header("last-modified"); !modified.empty()) {
        // One-second dates: the length tells apart most changes within one.
        return "last-modified " + modified + ", length " + response.header("content-length");
    }
    return {};
}

} // namespace nixery
