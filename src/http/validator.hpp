// What tells whether a URL's content changed without downloading it again:
// the validator of an HTTP response (RFC 9110 §8.8). Pure: no I/O.
#pragma once

#include "http/client.hpp"

#include <string>

namespace nixery {

// The response's ETag (weak ones too: equal content, equal tag), else its
// Last-Modified with its Content-Length; "" when it has neither, and then
// nothing can be compared. Equal validators of one URL mean the same content.
std::string content_validator(const HttpResponse& response);

} // namespace nixery
