#include "util/json.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace nixery {

std::string json_object(std::initializer_list<std::pair<const char*, std::string>> strings,
                        std::initializer_list<std::pair<const char*, std::int64_t>> numbers) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    for (const auto& [k, v] : strings) {
        w.Key(k);
        w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
    }
    for (const auto& [k, v] : numbers) {
        w.Key(k);
        w.Int64(v);
    }
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize());
}

} // namespace nixery
