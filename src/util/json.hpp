// Flat JSON objects (string and integer members) written with RapidJSON,
// so every value is escaped as JSON requires; for request bodies and
// tokens, never built by concatenating strings. Knows nothing of what the
// members mean.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>

namespace nixery {

// {"k1":"v1",…,"n1":1,…}: the string members in order, then the numbers.
std::string json_object(std::initializer_list<std::pair<const char*, std::string>> strings,
                        std::initializer_list<std::pair<const char*, std::int64_t>> numbers = {});

} // namespace nixery
