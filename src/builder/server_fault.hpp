// A fault of this server (disk, database, storage, Nix not runnable) as the
// client sees it: a 500 saying what failed, without paths or other details
// of the server. Not logged here: the request's log line (or a build job's)
// says it, once.
#pragma once

#include "core/routes.hpp"
#include "util/result.hpp"

#include <string_view>

namespace nixery {

RegistryError server_fault(const Error& e, std::string_view what);

} // namespace nixery
