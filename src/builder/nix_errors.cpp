#include "builder/nix_errors.hpp"

#include "core/platform.hpp"

#include <string>
#include <vector>

namespace nixery {

namespace {

std::string quoted_list(const std::vector<std::string>& names) {
    std::string out;
    for (std::size_t i = 0; i < names.size(); ++i) {
        out += (i == 0 ? "" : i + 1 == names.size() ? " and " : ", ") + json_string(names[i]);
    }
    return out;
}

std::string json_list(const std::vector<std::string>& names) {
    std::string out = "[";
    for (std::size_t i = 0; i < names.size(); ++i) {
        out += (i == 0 ? "" : ",") + json_string(names[i]);
    }
    return out + "]";
}

// nixpkgs' reason for a package its meta.platforms leaves out: "is not
// available on the requested hostPlatform" (since 2022), "is not
// supported on ‘aarch64-linux’" (before).
bool is_unsupported_platform(std::string_view reason) {
    return reason.find("is not available on the requested hostPlatform") !=
               std::string_view::npos ||
           reason.find("is not supported on \u2018") != std::string_view::npos;
}

} // namespace

Failure nix_error(const NixFailure& f, std::string_view image) {
    const std::string name(image);
    switch (f.kind) {
    case NixFailure::Kind::timed_out: {
        const auto seconds = std::to_string(f.limit_seconds.count());
        const auto what = f.operation == "build" && f.limit == "NIX_TIMEOUT"
                              ? std::string("a builder")
                              : "Nix (" + f.operation + ")";
        // An evaluation names the requested package it was evaluating
        // when time ran out (image.nix evaluates them one after another).
        const auto package = f.package.empty()
                                 ? std::string()
                                 : " while evaluating package " + json_string(f.package);
        return {FailureKind::failed,
                "build timed out",
                "building \"" + name + "\" timed out: " + what + " ran longer than " + f.limit +
                    " (" + seconds + " s)" + package +
                    (f.log_tail.empty() ? "" : "; last output:\n" + f.log_tail),
                R"({"timeout":)" + seconds + R"(,"limit":)" + json_string(f.limit) +
                    (f.package.empty() ? "" : R"(,"package":)" + json_string(f.package)) +
                    R"(,"log":)" + json_string(f.log_tail) + "}",
                {}};
    }
    case NixFailure::Kind::refused:
        // A package whose meta.platforms leaves out the image's platform
        // (nixpkgs' check-meta refuses it like an unfree one): there is no
        // such image for that platform, and allowing it would only build
        // something that does not run there.
        if (is_unsupported_platform(f.log_tail)) {
            return {FailureKind::unknown,
                    "package not available on the platform",
                    "package \"" + f.package + "\" in \"" + name +
                        "\" is not available on this platform: " + f.log_tail,
                    R"({"package":)" + json_string(f.package) + R"(,"reason":)" +
                        json_string(f.log_tail) + "}",
                    {}};
        }
        return {FailureKind::refused,
                "package refused",
                "package \"" + f.package + "\" is refused by this registry's configuration: " +
                    f.log_tail + " (only the registry's operator can allow it)",
                R"({"package":)" + json_string(f.package) + R"(,"reason":)" +
                    json_string(f.log_tail) + "}",
                {}};
    case NixFailure::Kind::failed:
        if (!f.package.empty()) {
            return {FailureKind::failed,
                    "package cannot be evaluated",
                    "package \"" + f.package + "\" in \"" + name +
                        "\" cannot be evaluated: Nix said:\n" + f.log_tail,
                    R"({"package":)" + json_string(f.package) + R"(,"log":)" +
                        json_string(f.log_tail) + "}",
                    {}};
        }
        return {FailureKind::failed,
                "nix failed",
                "building \"" + name + "\" failed: Nix (" + f.operation + ") said:\n" + f.log_tail,
                R"({"log":)" + json_string(f.log_tail) + "}",
                {}};
    case NixFailure::Kind::disk_full:
        // The operator's to mend; the client learns what and that it is
        // the server's (with the request id), not Nix's log.
        return fault("building \"" + name + "\" failed on the server: No space left on device",
                     "nix (" + f.operation + "): " + f.log_tail);
    case NixFailure::Kind::killed:
        // Out of memory, most likely: the operator's to mend (fewer
        // parallel builds, more memory); the next pull tries again.
        return fault("building \"" + name +
                         "\" failed on the server: a builder was killed (signal 9), as the "
                         "kernel does when memory runs out",
                     "nix (" + f.operation + "): " + f.log_tail);
    case NixFailure::Kind::no_process:
        // The server's load or limits (TasksMax, memory): the operator's to
        // mend, and the next pull may well pass.
        return fault("building \"" + name +
                         "\" failed on the server: Nix could not start a process (out of "
                         "processes or memory); retry later",
                     "nix (" + f.operation + "): " + f.log_tail);
    case NixFailure::Kind::stopped:
        // Not the image's: the process that ran Nix is stopping.
        return {FailureKind::unavailable,
                "build stopped",
                "building \"" + name + "\" was stopped on the server; retry",
                {},
                "nix (" + f.operation + "): stopped"};
    case NixFailure::Kind::network: {
        // A cache or a source's host that cannot be reached now is not
        // the image's fault: not remembered, and said as Nix said it.
        Failure out{FailureKind::unavailable, "download failed",
                    "building \"" + name +
                        "\" failed: a download failed on the network; retry later. Nix (" +
                        f.operation + ") said:\n" + f.log_tail,
                    R"({"log":)" + json_string(f.log_tail) + "}",
                    "nix (" + f.operation + "): " + f.log_tail};
        return out;
    }
    case NixFailure::Kind::no_builder:
        // The server's to mend (a builder of that platform), not the
        // image's: not remembered, and logged for the operator.
        return {FailureKind::unavailable, "no builder",
                "building \"" + name +
                    "\" failed: no Nix builder of the server can build it now (none for its "
                    "system or features, or one that is down); retry later. Nix (" +
                    f.operation + ") said:\n" + f.log_tail,
                R"({"log":)" + json_string(f.log_tail) + "}",
                "nix (" + f.operation + "): " + f.log_tail};
    case NixFailure::Kind::not_runnable: {
        // Nix's own words name server paths: the log has them, the client not.
        const bool no_daemon = f.log_tail.find("daemon") != std::string::npos ||
                               f.log_tail.find("cannot connect to socket") != std::string::npos;
        Failure out{no_daemon ? FailureKind::unavailable : FailureKind::fault,
                    "cannot run nix",
                    no_daemon ? "cannot run Nix on the server: the Nix daemon is not running (its "
                                "socket is missing); retry later"
                              : "cannot run Nix on the server",
                    {},
                    "nix (" + f.operation + "): " + f.log_tail};
        return out;
    }
    }
    return fault("unknown Nix failure", f.log_tail);
}

std::optional<Failure> evaluation_error(const Evaluation& ev, const Image& image,
                                        std::string_view source) {
    if (!ev.missing.empty()) {
        const bool one = ev.missing.size() == 1;
        return unknown(std::string(one ? "package " : "packages ") + quoted_list(ev.missing) +
                           (one ? " is" : " are") + " not in the package set (" +
                           std::string(source) +
                           "); check the spelling of each path component of \"" + image.name + "\"",
                       R"({"missing":)" + json_list(ev.missing) + "}");
    }
    if (!ev.not_packages.empty()) {
        return unknown(quoted_list(ev.not_packages) + " in \"" + image.name +
                           "\" is an attribute of the package set but not a package (a derivation)",
                       R"({"notPackages":)" + json_list(ev.not_packages) + "}");
    }
    // Such a set builds for the host: an image of another architecture
    // would hold the host's binaries under the other's name.
    if (image.arch != host_arch() && !ev.system_applied) {
        return unknown("the package set takes no \"system\" argument, so it cannot build " +
                       std::string(oci_architecture(image.arch)) + " images");
    }
    return std::nullopt;
}

} // namespace nixery
