// Nix's failures in words a client can act on: which package is unknown,
// not a package, refused; what Nix said when a build failed; that it ran
// out of time. The failures of a build's Nix steps come from here and
// nowhere else; the registry maps them to HTTP (core/failure.hpp).
#pragma once

#include "core/failure.hpp"
#include "core/image.hpp"
#include "nix/nix.hpp"

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace nixery {

// A failed or timed-out Nix run: `failed` with Nix's last output, naming
// the package whose evaluation failed when Nix said which, and the bound
// that ran out; a package the package set's configuration refuses (unfree,
// insecure) is `refused`, for the operator to allow, but one not available
// on the image's platform (meta.platforms) is `unknown`; Nix not runnable at
// all is `unavailable` (no daemon) or a `fault`, Nix's words (with server
// paths) only in the internal text.
Failure nix_error(const NixFailure& f, std::string_view image);

// Why an evaluation cannot become an image (unknown packages, attributes
// that are not packages, arm64 from a package set without `system`), or
// nullopt when it can. `source` describes the package set.
std::optional<Failure> evaluation_error(const Evaluation& evaluation, const Image& image,
                                        std::string_view source);

} // namespace nixery
