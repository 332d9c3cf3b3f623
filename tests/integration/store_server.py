"""What the HTTP servers standing in for object stores (gcs_server.py,
s3_sigv4_proxy.py) share: the JSON-lines request log tests read, a
quiet HTTP/1.1 handler with the server's state at hand, and serving."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class RequestLog:
    """One JSON object a line appended to `path` (nothing without one),
    flushed at once so a test sees every request already answered."""

    def __init__(self, path):
        self.file = open(path, "a") if path else None
        self.lock = threading.Lock()

    def record(self, entry):
        if self.file:
            with self.lock:
                self.file.write(json.dumps(entry) + "\n")
                self.file.flush()


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, no access log on stderr; the server's
    `state` is the handler's."""

    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    @property
    def state(self):
        return self.server.state


def serve(port, handler, state):
    """Serves on 127.0.0.1:`port` (0: a free one), a thread a connection,
    until interrupted; prints "listening PORT" once it accepts."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    server.state = state
    print("listening %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
