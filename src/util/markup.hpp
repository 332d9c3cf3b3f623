// Escaping text for HTML and XML documents.
#pragma once

#include <string>
#include <string_view>

namespace nixery {

// `text` with &, <, >, " and ' replaced by character references, safe in
// element content and in quoted attribute values of HTML and XML alike.
std::string escape_markup(std::string_view text);

} // namespace nixery
