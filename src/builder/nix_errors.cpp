#include "builder/nix_errors.hpp"

#include "util/log.hpp"

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

} // namespace

RegistryError nix_error(const NixFailure& f, std::string_view image) {
    const std::string name(image);
    switch (f.kind) {
    case NixFailure::Kind::timed_out: {
        const auto seconds = std::to_string(f.limit_seconds.count());
        const auto what = f.operation == "build" && f.limit == "NIX_TIMEOUT"
                              ? std::string("a builder")
                              : "Nix (" + f.operation + ")";
        return manifest_unknown("building \"" + name + "\" timed out: " + what +
                                    " ran longer than " + f.limit + " (" + seconds + " s)" +
                                    (f.log_tail.empty() ? "" : "; last output:\n" + f.log_tail),
                                R"({"timeout":)" + seconds + R"(,"limit":)" + json_string(f.limit) +
                                    R"(,"log":)" + json_string(f.log_tail) + "}");
    }
    case NixFailure::Kind::refused:
        return RegistryError{403, "DENIED",
                             "package \"" + f.package +
                                 "\" is refused by this registry's configuration: " + f.log_tail +
                                 " (only the registry's operator can allow it)",
                             R"({"package":)" + json_string(f.package) + R"(,"reason":)" +
                                 json_string(f.log_tail) + "}"};
    case NixFailure::Kind::failed:
        if (!f.package.empty()) {
            return manifest_unknown("package \"" + f.package + "\" in \"" + name +
                                        "\" cannot be evaluated: Nix said:\n" + f.log_tail,
                                    R"({"package":)" + json_string(f.package) + R"(,"log":)" +
                                        json_string(f.log_tail) + "}");
        }
        return manifest_unknown("building \"" + name + "\" failed: Nix (" + f.operation +
                                    ") said:\n" + f.log_tail,
                                R"({"log":)" + json_string(f.log_tail) + "}");
    case NixFailure::Kind::not_runnable:
        // Nix's own words name server paths: the log has them, the client not.
        log::error("cannot run nix", {{"operation", f.operation}, {"error", f.log_tail}});
        if (f.log_tail.find("daemon") != std::string::npos ||
            f.log_tail.find("cannot connect to socket") != std::string::npos) {
            return RegistryError{503,
                                 "UNAVAILABLE",
                                 "cannot run Nix on the server: the Nix daemon is not running "
                                 "(its socket is missing); retry later",
                                 {}};
        }
        return internal_error("cannot run Nix on the server");
    }
    return internal_error("unknown Nix failure");
}

std::optional<RegistryError> evaluation_error(const Evaluation& ev, const Image& image,
                                              std::string_view source) {
    if (!ev.missing.empty()) {
        const bool one = ev.missing.size() == 1;
        return manifest_unknown(
            std::string(one ? "package " : "packages ") + quoted_list(ev.missing) +
                (one ? " is" : " are") + " not in the package set (" + std::string(source) +
                "); check the spelling of each path component of \"" + image.name + "\"",
            R"({"missing":)" + json_list(ev.missing) + "}");
    }
    if (!ev.not_packages.empty()) {
        return manifest_unknown(
            quoted_list(ev.not_packages) + " in \"" + image.name +
                "\" is an attribute of the package set but not a package (a derivation)",
            R"({"notPackages":)" + json_list(ev.not_packages) + "}");
    }
    if (image.arch == Arch::arm64 && !ev.system_applied) {
        return manifest_unknown(
            "the package set takes no \"system\" argument, so it cannot build arm64 images");
    }
    return std::nullopt;
}

} // namespace nixery
