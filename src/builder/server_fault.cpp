#include "builder/server_fault.hpp"

#include "util/text.hpp"

namespace nixery {

Failure server_fault(const Error& e, std::string_view what) {
    // The cause alone ("No space left on device"), never the paths, bucket
    // or SQL of the message: the full text is logged where the outcome is.
    const auto cause = public_cause(e.message);
    return fault("building \"" + std::string(what) + "\" failed on the server" +
                     (cause.empty() ? std::string() : ": " + cause),
                 e.message);
}

} // namespace nixery
