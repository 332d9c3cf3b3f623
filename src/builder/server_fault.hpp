// A fault of this server (disk, database, storage, Nix not runnable) as the
// client sees it: saying what failed, without paths or other details of the
// server, which stay in the failure's internal text. Not logged here: the
// request's log line (or a build job's) says it, once.
#pragma once

#include "core/failure.hpp"
#include "util/result.hpp"

#include <string_view>

namespace nixery {

// A `fault` whose message is "building "<what>" failed on the server", with
// the cause when it names nothing private ("No space left on device"), and
// whose internal text is `e`'s whole message.
Failure server_fault(const Error& e, std::string_view what);

} // namespace nixery
