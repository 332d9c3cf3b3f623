// The registry API (pull side of the OCI distribution spec): routes a
// request, validates every name, tag and digest, and answers with a manifest,
// an X-Accel-Redirect (or redirect) to a stored blob, a tag list, or a
// registry error; and, outside the API, the start page (/) and the metrics
// (/metrics). One instance per worker thread.
#pragma once

#include "builder/build_runner.hpp"
#include "builder/builder.hpp"
#include "fcgi/worker.hpp"
#include "metrics/metrics.hpp"
#include "registry/disclosure.hpp"

#include <memory>

namespace nixery {

// What every thread of a worker process shares (owned by the process).
struct ProcessServices : PoolServices {
    JobBoard& jobs; // shared by every worker process
};

class RegistryHandler final : public RequestHandler {
public:
    // Opens this thread's database connection and package source.
    static Result<std::unique_ptr<RegistryHandler>> open(const ProcessServices& services);

    Response handle(const Request& request) override;
    Response busy(const Request& request) override;
    Response failed(const Request& request) override;

private:
    RegistryHandler(const ProcessServices& services, std::unique_ptr<BuilderParts> parts);

    // handle() for a routed request; handle() labels the response.
    Response answer(const Request& request, const Route& route);

    Response manifest(const Request& request, const std::string& name,
                      const std::string& reference);
    // A manifest by tag whose image (of some platform) needs a build:
    // answered later, when the builds of every platform end, or with early
    // headers at NIXERY_HEADER_DEADLINE.
    Response after_build(const std::string& name, const std::string& tag,
                         const ManifestChoice& choice, std::vector<Builder::Target> targets);
    // A blob or manifest by digest, from storage: a GET gets the location
    // (X-Accel-Redirect or a redirect); a HEAD on an object store gets
    // size, type and digest from here, since the redirect target is
    // signed for GET only.
    enum class Stored { blob, manifest };
    Response stored(const Request& request, const std::string& name, const std::string& digest,
                    Stored kind);
    Response tags(const Request& request, const std::string& name);
    Response start_page(const Request& request);
    // `error` (the request's own: a bad name, tag, digest) as the client
    // may see it (see Disclosure), as a response.
    Response refuse(RegistryError error) const;
    // A failure of the builder or an adapter, answered (failure_response).
    Response refuse(const Failure& failure) const;

    ProcessServices m_services;
    std::unique_ptr<BuilderParts> m_parts;
    BuildCache& m_cache; // m_parts's
    Disclosure m_disclosure;
};

// A registry error as a response (JSON body, the spec's headers).
Response error_response(const RegistryError& error);

// The answer to `failure`, and where it is logged, once: the registry
// error it maps to (core/failure.hpp) as `disclosure` lets the client see
// it, and fields for the request's log line with what failed and the
// internal text; the line is an error when the operator must act, unless
// the build that failed has logged it already (a remembered failure).
Response failure_response(const Disclosure& disclosure, const Failure& failure);

} // namespace nixery
