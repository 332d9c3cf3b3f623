#include "builder/server_fault.hpp"

namespace nixery {

RegistryError server_fault(const Error& e, std::string_view what) {
    return internal_error("building \"" + std::string(what) +
                          "\" failed on the server: " + e.message);
}

} // namespace nixery
