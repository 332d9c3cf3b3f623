#include "builder/nix_errors.hpp"

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

RegistryError nix_error(const NixFailure& f, std::string_view image, std::chrono::seconds timeout) {
    const std::string name(image);
    switch (f.kind) {
    case NixFailure::Kind::timed_out:
        return manifest_unknown("building \"" + name + "\" timed out: Nix (" + f.operation +
                                    ") ran longer than NIX_TIMEOUT (" +
                                    std::to_string(timeout.count()) + " s)" +
                                    (f.log_tail.empty() ? "" : "; last output:\n" + f.log_tail),
                                R"({"timeout":)" + std::to_string(timeout.count()) + R"(,"log":)" +
                                    json_string(f.log_tail) + "}");
    case NixFailure::Kind::failed:
        return manifest_unknown("building \"" + name + "\" failed: Nix (" + f.operation +
                                    ") said:\n" + f.log_tail,
                                R"({"log":)" + json_string(f.log_tail) + "}");
    case NixFailure::Kind::not_runnable:
        return internal_error("cannot run Nix on the server: " + f.log_tail);
    }
    return internal_error("unknown Nix failure");
}

std::optional<RegistryError>
evaluation_error(const Evaluation& ev, const Image& image, std::string_view source,
                 const std::function<std::string(const std::string& package)>& explain) {
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
    if (!ev.refused.empty()) {
        const auto why = explain(ev.refused.front());
        return manifest_unknown("package " + quoted_list(ev.refused) +
                                    " cannot be used: Nix refuses to evaluate it:\n" + why,
                                R"({"refused":)" + json_list(ev.refused) + R"(,"log":)" +
                                    json_string(why) + "}");
    }
    if (image.arch == Arch::arm64 && !ev.system_applied) {
        return manifest_unknown(
            "the package set takes no \"system\" argument, so it cannot build arm64 images");
    }
    return std::nullopt;
}

} // namespace nixery
