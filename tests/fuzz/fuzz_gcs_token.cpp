// Fuzzes the token endpoint's answer (GCS service accounts and the metadata
// server): the first byte chooses the HTTP status, the rest is the body.
#include "storage/gcs_auth.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>

using namespace nixery;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    HttpResponse r;
    r.status = data[0] < 200 ? 200 : data[0] < 230 ? 401 : 500;
    r.body.assign(reinterpret_cast<const char*>(data + 1), size - 1);
    auto token = parse_token_response(r, "\"https://oauth2.example/token\"");
    if (token && token->lifetime.count() < 0) {
        std::abort();
    }
    return 0;
}
