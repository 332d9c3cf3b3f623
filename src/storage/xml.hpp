// Just enough XML for S3's replies (ListObjectsV2, InitiateMultipartUpload,
// CompleteMultipartUpload, errors): the elements with a given tag name and
// their text, with the five predefined entities and numeric references
// decoded. Not a general parser: no namespaces prefixes, CDATA or DTDs,
// which S3 does not send. Pure.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace nixery::xml {

// The raw content of every <tag>…</tag> (or <tag .../>, as "") in `xml`,
// outermost first, in document order.
std::vector<std::string_view> elements(std::string_view xml, std::string_view tag);

// The decoded text of the first <tag>, or "" when there is none.
std::string text(std::string_view xml, std::string_view tag);

std::string decode(std::string_view text);

} // namespace nixery::xml
