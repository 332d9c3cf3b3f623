// What this instance tells anonymous clients about itself. Errors sent to a
// client (and the start page) may name packages, tags and Nix's own message,
// but never a server path, a bucket, SQL or a credential: this module
// rewrites every text that leaves the registry, and quotes the request id
// in server faults so an operator finds the full text in the log (where the
// same request id is on every line). Its only I/O: reading, once, where
// symlinks among the private paths lead.
#pragma once

#include "config.hpp"
#include "core/routes.hpp"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nixery {

class Disclosure {
public:
    // The private paths and names of `config`: its state directory,
    // storage path or bucket, data files and a local package set, each
    // also as its real path when a symlink leads there.
    explicit Disclosure(const Config& config);

    // `text` without URL user info, and with each private path or name
    // replaced by a placeholder such as "<state directory>"; a bucket's
    // name where it names the bucket (in a URL, quoted), not in prose.
    std::string scrub(std::string_view text) const;

    // `error` as the client may see it: scrubbed message and detail; a
    // server fault (5xx) also names `request_id` (when not empty).
    RegistryError for_client(RegistryError error, std::string_view request_id) const;

private:
    std::vector<std::pair<std::string, std::string>> m_private; // text → placeholder
    std::vector<std::string> m_buckets; // → "<bucket>" where they name a bucket
};

} // namespace nixery
