// Fuzzes what Nix prints and nixery reads: the evaluation JSON of image.nix
// (for a fixed request of three packages), nix-store --dump-db's validity
// registrations, and the cleaning of Nix's log output.
#include "nix/nix.hpp"

#include <cstdint>
#include <string_view>

using namespace nixery;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    static const auto request =
        request_json({R"({"type":"path","path":"/src"})", Arch::amd64, {"hello", "shell", "x.y"}});
    if (auto ev = parse_evaluation(input, request); ev) {
        (void)ev->out_paths();
        (void)ev->has_attribute("bashInteractive");
    }
    (void)parse_validity_registration(input);
    (void)clean_nix_output(input);
    return 0;
}
