#include "core/failure.hpp"

#include <array>
#include <utility>

namespace nixery {

namespace {

constexpr std::array<std::pair<FailureKind, std::string_view>, 7> k_names{{
    {FailureKind::unknown, "unknown"},
    {FailureKind::failed, "failed"},
    {FailureKind::refused, "refused"},
    {FailureKind::busy, "busy"},
    {FailureKind::unavailable, "unavailable"},
    {FailureKind::overloaded, "overloaded"},
    {FailureKind::fault, "fault"},
}};

} // namespace

bool is_transient(FailureKind kind) {
    switch (kind) {
    case FailureKind::unknown:
    case FailureKind::failed:
    case FailureKind::refused:
        return false;
    case FailureKind::busy:
    case FailureKind::unavailable:
    case FailureKind::overloaded:
    case FailureKind::fault:
        return true;
    }
    return true;
}

bool needs_operator(FailureKind kind) {
    return kind == FailureKind::fault || kind == FailureKind::unavailable;
}

std::string_view failure_kind_name(FailureKind kind) {
    for (const auto& [k, name] : k_names) {
        if (k == kind) {
            return name;
        }
    }
    return "fault";
}

bool parse_failure_kind(std::string_view name, FailureKind& out) {
    for (const auto& [k, n] : k_names) {
        if (n == name) {
            out = k;
            return true;
        }
    }
    return false;
}

RegistryError registry_error(const Failure& failure) {
    RegistryError e;
    switch (failure.kind) {
    case FailureKind::unknown:
    case FailureKind::failed:
        e = manifest_unknown(failure.message, failure.detail);
        break;
    case FailureKind::refused:
        e = {403, "DENIED", failure.message, failure.detail};
        break;
    case FailureKind::busy:
    case FailureKind::unavailable:
        e = {503, "UNAVAILABLE", failure.message, failure.detail};
        break;
    case FailureKind::overloaded:
        e = {429, "TOOMANYREQUESTS", failure.message, failure.detail};
        break;
    case FailureKind::fault:
        e = internal_error(failure.message);
        e.detail = failure.detail;
        break;
    }
    e.retry_after = failure.retry_after;
    return e;
}

Failure fault(std::string message, std::string internal) {
    return {FailureKind::fault, "server fault", std::move(message), {}, std::move(internal)};
}

Failure source_unavailable(std::string_view what, std::string_view cause) {
    return {FailureKind::unavailable,
            "package source unavailable",
            "the package source (" + std::string(what) +
                ") cannot be reached: " + std::string(cause) + "; retry later",
            {},
            {}};
}

Failure unknown(std::string message, std::string detail) {
    return {FailureKind::unknown, {}, std::move(message), std::move(detail), {}};
}

Failure busy(std::string message, int retry_after) {
    Failure f{FailureKind::busy, {}, std::move(message), {}, {}};
    f.retry_after = retry_after;
    return f;
}

} // namespace nixery
