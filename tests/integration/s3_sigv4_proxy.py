#!/usr/bin/python3
"""A front for s3rver that checks what s3rver does not: AWS Signature
Version 4. s3rver accepts any signature from a known access key, so tests
through it alone would pass with broken signing; this proxy recomputes the
signature of every request the way S3 does and refuses a mismatch, then
forwards the request to s3rver. What it checks, as S3 documents it
(docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-authenticating-requests.html):

- Authorization headers: the credential (access key, date, region, "s3",
  "aws4_request"), that host, x-amz-date, x-amz-content-sha256 and every
  other x-amz-* header sent are signed, the clock skew (15 minutes), and
  the signature over the recomputed canonical request; 403
  SignatureDoesNotMatch (or InvalidAccessKeyId, RequestTimeTooSkewed,
  AccessDenied) otherwise;
- presigned URLs (X-Amz-* query parameters): the same, for the method of
  the request as it arrives (a URL presigned for GET is refused to a HEAD,
  as by S3), and the expiry;
- bodies: a hashed payload must match x-amz-content-sha256
  (XAmzContentSHA256Mismatch), and x-amz-checksum-sha256 the body
  (BadDigest), before anything reaches s3rver.

It also serves virtual-host addressing, which s3rver cannot: a request for
host "<bucket>.<--domain>" is forwarded in path style. No name under the
test domain resolves, so clients reach it as an HTTP proxy (http_proxy):
they send the absolute URL and the Host header they signed, which is what
a real proxy sees. Requests for any other host are forwarded as they are.

GET /_control/refuse-checksums?on=1 makes it refuse any request carrying
x-amz-checksum-sha256 with 400 InvalidArgument "Unsupported header", as
Backblaze B2's S3-compatible API does (on=0 accepts them again).

For fault tests, GET /_control/lose-complete?count=N makes it forward the
next N CompleteMultipartUpload requests and then close the connection
without answering, as when an answer is lost on the way back. A request
naming an upload that was completed or aborted gets S3's 404 NoSuchUpload
from the proxy: s3rver answers it with a 500 (a missing upload directory).
GET /_control/fail-complete?count=N answers the next N
CompleteMultipartUpload requests itself, as S3 may when the completion
fails after it began to answer: 200 OK with an <Error> document.

Every request is logged as one JSON line to --log (method, host, path,
query names, status, auth kind, whether it carried x-amz-checksum-sha256).

    s3_sigv4_proxy.py --port P --upstream-port U --access-key K --secret-key S
                      [--region us-east-1] [--domain s3.test] [--log FILE]
"""

import argparse
import base64
import calendar
import hashlib
import hmac
import http.client
import socket
import threading
import time
import urllib.parse

from store_server import QuietHandler, RequestLog, serve

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED = "UNSIGNED-PAYLOAD"
MAX_SKEW = 15 * 60
HOP_BY_HOP = {"connection", "proxy-connection", "keep-alive", "transfer-encoding", "te", "upgrade",
              "proxy-authorization"}


def uri_encode(text, keep_slash=False):
    return urllib.parse.quote(text, safe="-_.~" + ("/" if keep_slash else ""))


def canonical_query(pairs):
    return "&".join(sorted(uri_encode(k) + "=" + uri_encode(v) for k, v in pairs))


def canonical_value(value):
    return " ".join(value.split())


def canonical_request(method, raw_path, query_pairs, headers, signed_names, payload_hash):
    """S3's canonical request, from what arrived: the path decoded and
    encoded once (S3 never normalizes keys), the query sorted, the signed
    headers lowercased and trimmed; `headers` maps lowercase names to
    values."""
    path = uri_encode(urllib.parse.unquote(raw_path), keep_slash=True) or "/"
    lines = "".join(name + ":" + canonical_value(headers.get(name, "")) + "\n" for name in signed_names)
    return "\n".join([method, path, canonical_query(query_pairs), lines, ";".join(signed_names), payload_hash])


def signature(secret, timestamp, scope, creq):
    date, region, service, terminator = scope.split("/")
    sts = "\n".join([ALGORITHM, timestamp, scope, hashlib.sha256(creq.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, terminator):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, sts.encode(), hashlib.sha256).hexdigest(), sts


def parse_timestamp(text):
    return calendar.timegm(time.strptime(text, "%Y%m%dT%H%M%SZ"))


class Refusal(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.lose_complete = 0
        self.fail_complete = 0
        self.refuse_checksums = False
        self.finished_uploads = set()
        self.log = RequestLog(args.log)


class Handler(QuietHandler):
    server_version = "s3-sigv4-proxy"

    def do_GET(self):
        self.handle_one()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_GET

    # -- the request as S3 sees it -------------------------------------------

    def target(self):
        """(host, raw path, raw query) of the request, in origin form or,
        through http_proxy, absolute form."""
        if self.path.startswith(("http://", "https://")):
            url = urllib.parse.urlsplit(self.path)
            return self.headers.get("Host", url.netloc), url.path or "/", url.query
        url = urllib.parse.urlsplit(self.path)
        return self.headers.get("Host", ""), url.path or "/", url.query

    def path_style(self, host, raw_path):
        """The path s3rver understands: the bucket of a virtual host moves
        into the path."""
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        suffix = "." + self.state.args.domain
        if name.endswith(suffix):
            return "/" + name[:-len(suffix)] + raw_path
        return raw_path

    def check_header_auth(self, host, raw_path, query_pairs, headers):
        auth = headers["authorization"]
        fields = dict(part.strip().split("=", 1) for part in auth[len(ALGORITHM) + 1:].split(","))
        try:
            credential, signed, provided = fields["Credential"], fields["SignedHeaders"], fields["Signature"]
        except KeyError:
            raise Refusal(400, "AuthorizationHeaderMalformed", "The authorization header is malformed.")
        key_id, scope = credential.split("/", 1)
        signed_names = signed.split(";")
        timestamp = headers.get("x-amz-date", "")
        for required in ("host", "x-amz-date", "x-amz-content-sha256"):
            if required not in signed_names or required not in headers:
                raise Refusal(403, "AccessDenied", "%s must be sent and signed" % required)
        unsigned = [n for n in headers if n.startswith("x-amz-") and n not in signed_names]
        if unsigned:
            raise Refusal(403, "AccessDenied", "There were headers present in the request which were not "
                                               "signed: %s" % ", ".join(sorted(unsigned)))
        self.check_credential(key_id, scope, timestamp)
        creq = canonical_request(self.command, raw_path, query_pairs, headers, signed_names,
                                 headers["x-amz-content-sha256"])
        expected, sts = signature(self.state.args.secret_key, timestamp, scope, creq)
        if not hmac.compare_digest(expected, provided):
            raise Refusal(403, "SignatureDoesNotMatch",
                          "The request signature we calculated does not match the signature you provided. "
                          "Check your key and signing method. (canonical request: %r; string to sign: %r)"
                          % (creq, sts))

    def check_presigned(self, raw_path, query_pairs, headers):
        params = dict(query_pairs)
        if params.get("X-Amz-Algorithm") != ALGORITHM:
            raise Refusal(400, "AuthorizationQueryParametersError", "X-Amz-Algorithm must be " + ALGORITHM)
        try:
            key_id, scope = params["X-Amz-Credential"].split("/", 1)
            timestamp = params["X-Amz-Date"]
            expires = int(params["X-Amz-Expires"])
            signed_names = params["X-Amz-SignedHeaders"].split(";")
            provided = params["X-Amz-Signature"]
        except (KeyError, ValueError):
            raise Refusal(400, "AuthorizationQueryParametersError", "a presigned URL needs every X-Amz-* parameter")
        if "host" not in signed_names:
            raise Refusal(403, "AccessDenied", "the host header must be signed")
        if not 1 <= expires <= 604800:
            raise Refusal(400, "AuthorizationQueryParametersError", "X-Amz-Expires must be 1 to 604800")
        self.check_credential(key_id, scope, timestamp, skew=False)
        if time.time() > parse_timestamp(timestamp) + expires:
            raise Refusal(403, "AccessDenied", "Request has expired")
        pairs = [(k, v) for k, v in query_pairs if k != "X-Amz-Signature"]
        creq = canonical_request(self.command, raw_path, pairs, headers, signed_names, UNSIGNED)
        expected, sts = signature(self.state.args.secret_key, timestamp, scope, creq)
        if not hmac.compare_digest(expected, provided):
            raise Refusal(403, "SignatureDoesNotMatch",
                          "The request signature we calculated does not match the signature you provided. "
                          "(canonical request: %r; string to sign: %r)" % (creq, sts))

    def check_credential(self, key_id, scope, timestamp, skew=True):
        if key_id != self.state.args.access_key:
            raise Refusal(403, "InvalidAccessKeyId",
                          "The AWS Access Key Id you provided does not exist in our records.")
        try:
            signed_at = parse_timestamp(timestamp)
        except ValueError:
            raise Refusal(403, "AccessDenied", "X-Amz-Date must be an ISO 8601 basic timestamp")
        parts = scope.split("/")
        if len(parts) != 4 or parts[0] != timestamp[:8] or parts[1] != self.state.args.region \
                or parts[2] != "s3" or parts[3] != "aws4_request":
            raise Refusal(400, "AuthorizationHeaderMalformed",
                          "The credential scope %r is not <%s>/%s/s3/aws4_request"
                          % (scope, timestamp[:8], self.state.args.region))
        if skew and abs(time.time() - signed_at) > MAX_SKEW:
            raise Refusal(403, "RequestTimeTooSkewed",
                          "The difference between the request time and the current time is too large.")

    # -- answering -------------------------------------------------------------

    def refuse(self, refusal):
        body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>%s</Message></Error>"
                % (refusal.code, refusal.message.replace("&", "&amp;").replace("<", "&lt;"))).encode()
        self.send_response(refusal.status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        return refusal.status

    def body_chunks(self, length):
        """The request body, `length` bytes, a MiB at a time."""
        left = length
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                raise ConnectionResetError("the client closed mid-body")
            left -= len(chunk)
            yield chunk

    def read_body(self, length):
        return b"".join(self.body_chunks(length))

    def handle_one(self):
        host, raw_path, raw_query = self.target()
        query_pairs = urllib.parse.parse_qsl(raw_query, keep_blank_values=True)
        entry = {"method": self.command, "host": host, "path": self.path_style(host, raw_path),
                 "query": sorted(k for k, _ in query_pairs),
                 "checksum": "x-amz-checksum-sha256" in {k.lower() for k in self.headers.keys()}}
        try:
            entry["status"] = self.proxy(host, raw_path, raw_query, query_pairs, entry)
        except (BrokenPipeError, ConnectionResetError):
            entry["status"] = None
        self.state.log.record(entry)

    def proxy(self, host, raw_path, raw_query, query_pairs, entry):
        controls = {
            "/_control/lose-complete": lambda q: ("lose_complete", int(q["count"])),
            "/_control/fail-complete": lambda q: ("fail_complete", int(q["count"])),
            "/_control/refuse-checksums": lambda q: ("refuse_checksums", q.get("on", "1") == "1"),
        }
        if raw_path in controls:
            name, value = controls[raw_path](dict(query_pairs))
            with self.state.lock:
                setattr(self.state, name, value)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return 200
        headers = {k.lower(): v for k, v in self.headers.items()}
        length = int(headers.get("content-length") or 0)
        params = dict(query_pairs)
        body = None
        try:
            if "X-Amz-Signature" in params:
                entry["auth"] = "presigned"
                self.check_presigned(raw_path, query_pairs, headers)
            elif headers.get("authorization", "").startswith(ALGORITHM + " "):
                entry["auth"] = "header"
                self.check_header_auth(host, raw_path, query_pairs, headers)
                payload_hash = headers["x-amz-content-sha256"]
                checksum = headers.get("x-amz-checksum-sha256")
                with self.state.lock:
                    refuse_checksums = self.state.refuse_checksums
                if checksum is not None and refuse_checksums:
                    # Backblaze B2's S3-compatible API (and other stores
                    # without flexible checksums) refuse the header.
                    raise Refusal(400, "InvalidArgument",
                                  "Unsupported header 'x-amz-checksum-sha256' received for this API call.")
                if payload_hash != UNSIGNED or checksum is not None:
                    body = self.read_body(length)
                    if payload_hash != UNSIGNED and hashlib.sha256(body).hexdigest() != payload_hash:
                        raise Refusal(400, "XAmzContentSHA256Mismatch",
                                      "The provided 'x-amz-content-sha256' header does not match what was computed.")
                    if checksum is not None and base64.b64encode(hashlib.sha256(body).digest()).decode() != checksum:
                        raise Refusal(400, "BadDigest",
                                      "The SHA256 you specified did not match the calculated checksum.")
            else:
                entry["auth"] = "anonymous"
            with self.state.lock:
                finished = params.get("uploadId") in self.state.finished_uploads
            if finished:
                raise Refusal(404, "NoSuchUpload", "The specified upload does not exist. The upload ID may be "
                                                   "invalid, or the upload may have been aborted or completed.")
            completing = self.command == "POST" and "uploadId" in params and "partNumber" not in params
            with self.state.lock:
                fail = completing and self.state.fail_complete > 0
                self.state.fail_complete -= 1 if fail else 0
            if fail:
                raise Refusal(200, "InternalError", "We encountered an internal error. Please try again.")
        except Refusal as refusal:
            if body is None and length:
                self.read_body(length)  # keep the connection usable
            return self.refuse(refusal)
        return self.forward(host, raw_path, raw_query, params, length, body)

    def forward(self, host, raw_path, raw_query, params, length, body):
        upstream = http.client.HTTPConnection("127.0.0.1", self.state.args.upstream_port, timeout=600)
        target = self.path_style(host, raw_path) + ("?" + raw_query if raw_query else "")
        upstream.putrequest(self.command, target, skip_host=True, skip_accept_encoding=True)
        upstream.putheader("Host", "127.0.0.1:%d" % self.state.args.upstream_port)
        for name, value in self.headers.items():
            if name.lower() not in HOP_BY_HOP and name.lower() not in ("host", "content-length"):
                upstream.putheader(name, value)
        if length or self.command in ("PUT", "POST"):
            upstream.putheader("Content-Length", str(length))
        upstream.endheaders()
        if body is not None:
            upstream.send(body)
        else:
            for chunk in self.body_chunks(length):
                upstream.send(chunk)
        response = upstream.getresponse()
        completing = self.command == "POST" and "uploadId" in params and "partNumber" not in params
        aborting = self.command == "DELETE" and "uploadId" in params
        if (completing and response.status == 200) or (aborting and response.status == 204):
            with self.state.lock:
                self.state.finished_uploads.add(params["uploadId"])
        if completing:
            with self.state.lock:
                lose = self.state.lose_complete > 0
                self.state.lose_complete -= 1 if lose else 0
            if lose:
                # s3rver completed the upload; its answer never arrives.
                response.read()
                upstream.close()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return "lost %d" % response.status
        self.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        declared = response.getheader("Content-Length")
        if self.command == "HEAD" or declared is not None:
            # Streamed: a presigned GET of a large blob never sits here whole.
            self.send_header("Content-Length", declared or "0")
            self.end_headers()
            while self.command != "HEAD":
                chunk = response.read(1 << 20)
                if not chunk:
                    break
                self.wfile.write(chunk)
        else:
            data = response.read()
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        upstream.close()
        return response.status


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream-port", type=int, required=True)
    parser.add_argument("--access-key", required=True)
    parser.add_argument("--secret-key", required=True)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--domain", default="s3.test")
    parser.add_argument("--log")
    args = parser.parse_args()
    serve(args.port, Handler, State(args))


if __name__ == "__main__":
    main()
