// A FastCGI worker process: several threads accepting on the shared
// listening socket, each with its own per-thread state (database connection
// and the like) made by a factory, so a long Nix build in one thread leaves
// the others answering. SIGTERM drains: while the process has builds or
// waiting requests it answers on (worker_stopping() tells the handler to
// start no build), then accepts no more, and requests in flight finish
// before the process exits. A handler that throws answers 500; it never
// takes the worker down.
#pragma once

#include "fcgi/http.hpp"
#include "metrics/metrics.hpp"

#include <functional>
#include <memory>

namespace nixery {

class RequestHandler {
public:
    virtual ~RequestHandler() = default;
    // The answer to `request`; its `route` labels it in the request metrics.
    virtual Response handle(const Request& request) = 0;
    // The answer when handle() threw (the worker has logged why): a 500 in
    // the handler's own format, labelled like handle()'s.
    virtual Response failed(const Request& request) = 0;
    // The answer when too many requests of this process wait already
    // (Response::later): a 429 in the handler's own format.
    virtual Response busy(const Request& request) = 0;
};

// Called once in each thread; a failure to set up is fatal for the worker.
using HandlerFactory = std::function<std::unique_ptr<RequestHandler>()>;

// Serves until SIGTERM or SIGINT, and after it while requests answered
// later wait or `busy()` (builds this process runs); returns the process
// exit code. Every answered request is counted in `metrics`.
int run_worker(int listen_fd, int threads, const HandlerFactory& make_handler, Metrics& metrics,
               const std::function<bool()>& busy = {});

// Whether this process drains (SIGTERM came): it answers on, but a request
// must not start a build.
bool worker_stopping();

} // namespace nixery
