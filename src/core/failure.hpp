// Why something a client asked for did not happen, as the adapters (package
// sources, Nix, storage, the cache) and the builder say it: what kind of
// failure it is, what failed, a message the client may read, and the full
// text for the log. None of them knows HTTP: registry_error() below is the
// one place a failure becomes a status, a code and a Retry-After. Pure: no
// I/O.
#pragma once

#include "core/routes.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace nixery {

enum class FailureKind : std::uint8_t {
    unknown,     // what was asked for does not exist: a package, a git ref or commit
    failed,      // the image cannot be built: Nix failed, or ran out of time
    refused,     // the configuration refuses it (an unfree or insecure package)
    busy,        // something takes its time (a fetch, a packing, gc): ask again shortly
    unavailable, // something the server needs cannot be reached: the source, the Nix daemon
    overloaded,  // too much is asked of the server at once
    fault,       // the server failed: disk, database, storage, a program it runs
};

struct Failure {
    FailureKind kind = FailureKind::fault;
    std::string what;     // what failed, a few words for the log ("package source unavailable")
    std::string message;  // for the client: packages, tags, Nix's words; no server paths
    std::string detail;   // a JSON value for the client's error detail; empty for none
    std::string internal; // the full text for the log (paths, SQL, commands); never sent
    int retry_after = 0;  // seconds a client should wait before asking again; 0: the default
    // Read back from the failure memory: the build that failed has logged
    // it, so a request answered with it logs it as routine.
    bool remembered = false;
};

// Whether the failure may be gone on the next try (busy, unavailable,
// overloaded, a fault): such a failure is not held against later requests.
bool is_transient(FailureKind kind);

// Whether the operator must act (a fault; something the server needs is
// unreachable): logged as an error where it is decided, the rest as
// routine.
bool needs_operator(FailureKind kind);

// The name of a kind, as the failure memory stores it; parse_failure_kind
// reads it back (nullopt-like: false when the word is unknown).
std::string_view failure_kind_name(FailureKind kind);
bool parse_failure_kind(std::string_view name, FailureKind& out);

// The registry error a client gets for `failure`:
//   unknown, failed → 404 MANIFEST_UNKNOWN   refused     → 403 DENIED
//   busy, unavailable → 503 UNAVAILABLE      overloaded  → 429 TOOMANYREQUESTS
//   fault → 500 INTERNAL_ERROR
// with the failure's message, detail and retry_after (never its internal
// text). The distribution spec's codes:
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#error-codes
RegistryError registry_error(const Failure& failure);

// Failures in the shapes the adapters need most.
// A fault of the server: `message` for the client, `internal` (an adapter's
// error, with its paths) for the log.
Failure fault(std::string message, std::string internal);
// A source or service that cannot be reached: "the package source (<what>)
// cannot be reached: <cause>; retry later". `cause` must be fit for clients
// (credentials removed).
Failure source_unavailable(std::string_view what, std::string_view cause);
// Something asked for that does not exist.
Failure unknown(std::string message, std::string detail = {});
// Something under way that the client should come back for.
Failure busy(std::string message, int retry_after = 0);

} // namespace nixery
