#!/usr/bin/python3
"""A small Google Cloud Storage server for the tests: the parts of the JSON
API nixery uses (cloud.google.com/storage/docs/json_api/v1), the OAuth2
token endpoint for service-account JWTs, the GCE metadata token endpoint,
and V4-signed downloads. No GCS emulator runs offline here, so this stands
in for the real thing and checks what the real one checks:

- API calls carry a bearer token this server issued and that has not
  expired (unless started with --no-auth, as an emulator is used);
- a token is issued only for a JWT whose RS256 signature verifies with the
  service account's public key and whose claims (iss, aud, scope, iat, exp)
  are right;
- uploads say uploadType=media or uploadType=resumable and name a valid
  object; resumable chunks are contiguous multiples of 256 KiB but the last,
  and an object exists only once its upload is complete;
- a signed download URL (GOOG4-RSA-SHA256) is served only when its
  signature verifies against the recomputed canonical request (method
  included: a URL signed for GET does not serve a HEAD) and it has not
  expired; unsigned downloads only with --public-read.

Tests can inject faults through /_control/: fail?status=S&count=N answers
the next N API calls with S; stall-chunks?count=N drops the next N
resumable chunks and answers 308 with the unchanged Range, as a session
that persisted none of them.

Objects live in memory. Every request is logged as one JSON line to
--log (method, path, query, status, whether it carried a bearer token), so
tests can see what the client did. Run it as a program:

    gcs_server.py --port 0 --bucket B [--public-key PEM --client-email E]
                  [--no-auth] [--public-read] [--metadata] [--page-size N]

It prints "listening PORT" once ready.
"""

import argparse
import base64
import calendar
import hashlib
import json
import secrets
import sys
import threading
import time
import urllib.parse

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from store_server import QuietHandler, RequestLog, serve

CHUNK_QUANTUM = 256 * 1024
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPES = ("https://www.googleapis.com/auth/devstorage.read_write",
          "https://www.googleapis.com/auth/devstorage.full_control",
          "https://www.googleapis.com/auth/cloud-platform")


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)


def uri_encode(text, keep_slash=False):
    return urllib.parse.quote(text, safe="-_.~" + ("/" if keep_slash else ""))


def canonical_value(value):
    return " ".join(value.split())


def v4_string_to_sign(method, raw_path, query_pairs, headers, signed_names):
    """The GOOG4-RSA-SHA256 string to sign of a request, recomputed from
    what arrived (cloud.google.com/storage/docs/authentication/canonical-requests).
    `query_pairs` are decoded and exclude X-Goog-Signature; `headers` maps
    lowercase names to values."""
    params = dict(query_pairs)
    canonical_query = "&".join(sorted(uri_encode(k) + "=" + uri_encode(v) for k, v in query_pairs))
    lines = "".join(name + ":" + canonical_value(headers.get(name, "")) + "\n" for name in signed_names)
    # The path as the client encoded it, normalized to the canonical encoding.
    path = uri_encode(urllib.parse.unquote(raw_path), keep_slash=True)
    creq = "\n".join([method, path, canonical_query, lines, ";".join(signed_names), "UNSIGNED-PAYLOAD"])
    credential = params["X-Goog-Credential"]
    scope = credential.split("/", 1)[1]
    return "\n".join(["GOOG4-RSA-SHA256", params["X-Goog-Date"], scope,
                      hashlib.sha256(creq.encode()).hexdigest()])


class Upload:
    def __init__(self, bucket, name, content_type, total):
        self.bucket = bucket
        self.name = name
        self.content_type = content_type
        self.total = total
        self.data = bytearray()
        self.done = False


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.RLock()
        self.buckets = {b: {} for b in args.bucket}
        self.tokens = {}  # token -> expiry
        self.uploads = {}
        self.public_key = None
        if args.public_key:
            with open(args.public_key, "rb") as f:
                self.public_key = serialization.load_pem_public_key(f.read())
        self.log = RequestLog(args.log)
        self.failures = []  # injected: [status, remaining]
        self.stalled_chunks = 0  # injected: chunks to drop, answering 308 without progress


class Handler(QuietHandler):
    server_version = "gcs-test-server"

    # -- plumbing -------------------------------------------------------------

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def reply(self, status, body=b"", content_type="application/json", headers=()):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if body or status not in (204, 304):
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.state.log.record({"method": self.command, "path": self.path.split("?")[0],
                               "query": sorted(urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)),
                               "status": status,
                               "bearer": self.headers.get("Authorization", "").startswith("Bearer ")})

    def error(self, status, message, reason="invalid"):
        self.reply(status, {"error": {"code": status, "message": message,
                                      "errors": [{"message": message, "domain": "global", "reason": reason}]}})

    def xml_error(self, status, code, message):
        body = ("<?xml version='1.0' encoding='UTF-8'?><Error><Code>%s</Code><Message>%s</Message></Error>"
                % (code, message)).encode()
        self.reply(status, body, "application/xml")

    def split(self):
        url = urllib.parse.urlsplit(self.path)
        return url.path, urllib.parse.parse_qsl(url.query, keep_blank_values=True)

    def authorized(self):
        if self.state.args.no_auth:
            return True
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            self.error(401, "Anonymous caller does not have storage access.", "required")
            return False
        token = auth[len("Bearer "):]
        with self.state.lock:
            expiry = self.state.tokens.get(token)
        if expiry is None or expiry < time.time():
            self.error(401, "Invalid Credentials", "authError")
            return False
        return True

    def injected_failure(self):
        with self.state.lock:
            if self.state.failures and self.state.failures[0][1] > 0:
                self.state.failures[0][1] -= 1
                return self.state.failures[0][0]
        return None

    def object_resource(self, bucket, name, obj):
        data, content_type, updated = obj
        return {"kind": "storage#object", "id": "%s/%s" % (bucket, name), "name": name, "bucket": bucket,
                "size": str(len(data)), "contentType": content_type, "updated": rfc3339(updated),
                "md5Hash": base64.b64encode(hashlib.md5(data).digest()).decode()}

    def bucket_objects(self, bucket):
        objects = self.state.buckets.get(bucket)
        if objects is None:
            self.error(404, "The specified bucket does not exist.", "notFound")
        return objects

    # -- dispatch -------------------------------------------------------------

    def do_GET(self):
        self.dispatch()

    def do_HEAD(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    def dispatch(self):
        path, query = self.split()
        try:
            if path == "/_control/fail":
                params = dict(query)
                with self.state.lock:
                    self.state.failures = [[int(params["status"]), int(params["count"])]]
                return self.reply(200, {})
            if path == "/_control/stall-chunks":
                with self.state.lock:
                    self.state.stalled_chunks = int(dict(query)["count"])
                return self.reply(200, {})
            if path == "/token" and self.command == "POST":
                return self.token()
            if path == "/computeMetadata/v1/instance/service-accounts/default/token":
                return self.metadata_token()
            if path.startswith("/storage/v1/b/") or path.startswith("/upload/storage/v1/b/"):
                status = self.injected_failure()
                if status:
                    self.body()
                    return self.error(status, "injected failure", "backendError")
                if path.startswith("/upload/"):
                    return self.upload(path, query)
                return self.api(path, query)
            if self.command in ("GET", "HEAD"):
                return self.download(path, query)
            self.error(404, "Not Found", "notFound")
        except (BrokenPipeError, ConnectionResetError):
            pass

    # -- OAuth2 ---------------------------------------------------------------

    def issue_token(self):
        token = "ya29.test-" + secrets.token_urlsafe(24)
        lifetime = self.state.args.token_lifetime
        with self.state.lock:
            self.state.tokens[token] = time.time() + lifetime
        self.reply(200, {"access_token": token, "expires_in": lifetime, "token_type": "Bearer"})

    def token(self):
        form = dict(urllib.parse.parse_qsl(self.body().decode()))
        bad = lambda why: self.reply(400, {"error": "invalid_grant", "error_description": why})
        if form.get("grant_type") != JWT_GRANT:
            return self.reply(400, {"error": "unsupported_grant_type",
                                    "error_description": "Invalid grant_type: %s" % form.get("grant_type")})
        if self.state.public_key is None:
            return bad("this server has no service account")
        parts = form.get("assertion", "").split(".")
        if len(parts) != 3:
            return bad("Invalid JWT: Token must be a short-lived token and in a reasonable timeframe")
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            signature = b64url_decode(parts[2])
        except ValueError:
            return bad("Invalid JWT: malformed")
        if header.get("alg") != "RS256":
            return bad("Invalid JWT: alg must be RS256")
        try:
            self.state.public_key.verify(signature, (parts[0] + "." + parts[1]).encode(),
                                         padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return bad("Invalid JWT Signature.")
        now = time.time()
        expected_aud = "http://%s/token" % self.headers.get("Host")
        if claims.get("iss") != self.state.args.client_email:
            return bad("Invalid JWT: iss is not the service account")
        if claims.get("aud") != expected_aud:
            return bad("Invalid JWT: aud must be %s" % expected_aud)
        if not any(s in claims.get("scope", "").split() for s in SCOPES):
            return bad("Invalid JWT: no storage scope")
        iat, exp = claims.get("iat", 0), claims.get("exp", 0)
        if not (iat <= now + 300 and exp > now and exp - iat <= 3600):
            return bad("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe")
        self.issue_token()

    def metadata_token(self):
        if self.headers.get("Metadata-Flavor") != "Google":
            return self.reply(403, b"Missing Metadata-Flavor:Google header.", "text/plain")
        if not self.state.args.metadata:
            return self.reply(404, b"no service account on this instance", "text/plain")
        self.issue_token()

    # -- JSON API: objects ----------------------------------------------------

    def api(self, path, query):
        if not self.authorized():
            return
        params = dict(query)
        rest = path[len("/storage/v1/b/"):]
        bucket, _, tail = rest.partition("/")
        bucket = urllib.parse.unquote(bucket)
        with self.state.lock:
            objects = self.bucket_objects(bucket)
            if objects is None:
                return
            if tail == "o" and self.command == "GET":
                prefix = params.get("prefix", "")
                names = sorted(n for n in objects if n.startswith(prefix))
                start = params.get("pageToken", "")
                names = [n for n in names if n > start] if start else names
                page = min(int(params.get("maxResults", "1000")), self.state.args.page_size)
                items = [self.object_resource(bucket, n, objects[n]) for n in names[:page]]
                result = {"kind": "storage#objects", "items": items}
                if len(names) > page:
                    result["nextPageToken"] = names[page - 1]
                return self.reply(200, result)
            if not tail.startswith("o/"):
                return self.error(404, "Not Found", "notFound")
            name = urllib.parse.unquote(tail[2:])
            obj = objects.get(name)
            if self.command == "DELETE":
                if obj is None:
                    return self.error(404, "No such object: %s/%s" % (bucket, name), "notFound")
                del objects[name]
                return self.reply(204)
            if self.command != "GET":
                return self.error(405, "Method not allowed")
            if obj is None:
                return self.error(404, "No such object: %s/%s" % (bucket, name), "notFound")
            if params.get("alt") == "media":
                return self.reply(200, bytes(obj[0]), obj[1])
            return self.reply(200, self.object_resource(bucket, name, obj))

    # -- JSON API: uploads ----------------------------------------------------

    def valid_name(self, name):
        return (name and len(name.encode()) <= 1024 and "\r" not in name and "\n" not in name
                and name not in (".", "..") and not name.startswith(".well-known/acme-challenge/"))

    def upload(self, path, query):
        params = dict(query)
        bucket = urllib.parse.unquote(path[len("/upload/storage/v1/b/"):].partition("/")[0])
        if "upload_id" in params:
            return self.upload_chunk(params["upload_id"])
        if not self.authorized():
            return
        upload_type = params.get("uploadType")
        body = self.body()
        with self.state.lock:
            if self.bucket_objects(bucket) is None:
                return
        if upload_type == "media":
            name = params.get("name")
            if not self.valid_name(name):
                return self.error(400, "Required parameter: name", "required")
            content_type = self.headers.get("Content-Type") or "application/octet-stream"
            with self.state.lock:
                self.state.buckets[bucket][name] = (bytes(body), content_type, time.time())
                resource = self.object_resource(bucket, name, self.state.buckets[bucket][name])
            return self.reply(200, resource)
        if upload_type == "resumable":
            metadata = json.loads(body) if body else {}
            name = params.get("name") or metadata.get("name")
            if not self.valid_name(name):
                return self.error(400, "Required parameter: name", "required")
            content_type = (self.headers.get("X-Upload-Content-Type") or metadata.get("contentType")
                            or "application/octet-stream")
            total = self.headers.get("X-Upload-Content-Length")
            upload_id = secrets.token_urlsafe(16)
            with self.state.lock:
                self.state.uploads[upload_id] = Upload(bucket, name, content_type,
                                                       int(total) if total is not None else None)
            location = "http://%s/upload/storage/v1/b/%s/o?uploadType=resumable&name=%s&upload_id=%s" % (
                self.headers.get("Host"), uri_encode(bucket), uri_encode(name), upload_id)
            return self.reply(200, b"", headers=[("Location", location), ("X-GUploader-UploadID", upload_id)])
        return self.error(400, "Invalid upload type: %s" % upload_type, "invalidParameter")

    def upload_chunk(self, upload_id):
        body = self.body()
        with self.state.lock:
            up = self.state.uploads.get(upload_id)
        if up is None:
            return self.error(404, "No such upload session", "notFound")
        if self.command == "DELETE":
            with self.state.lock:
                self.state.uploads.pop(upload_id, None)
            return self.reply(499, b"", "text/plain")
        if self.command != "PUT":
            return self.error(405, "Method not allowed")
        content_range = self.headers.get("Content-Range", "")
        if not content_range.startswith("bytes "):
            return self.error(400, "Content-Range is required")
        spec, _, total = content_range[len("bytes "):].partition("/")
        total = None if total == "*" else int(total)
        if up.total is not None and total is not None and total != up.total:
            return self.error(400, "Content-Range total differs from X-Upload-Content-Length")
        if spec == "*":
            if body:
                return self.error(400, "a status check has no body")
        else:
            first, _, last = spec.partition("-")
            first, last = int(first), int(last)
            with self.state.lock:
                stall = self.state.stalled_chunks > 0
                self.state.stalled_chunks -= 1 if stall else 0
            if stall:
                # GCS may persist less than a chunk, down to nothing; the
                # client learns it from the Range of the 308.
                headers = [("Range", "bytes=0-%d" % (len(up.data) - 1))] if up.data else []
                return self.reply(308, b"", "text/plain", headers)
            if last - first + 1 != len(body):
                return self.error(400, "Content-Range does not match Content-Length")
            if first != len(up.data):
                return self.error(400, "Expected the chunk to start at %d" % len(up.data))
            final = total is not None and last + 1 == total
            if not final and len(body) % CHUNK_QUANTUM != 0:
                return self.error(400, "Chunk size must be a multiple of 256 KiB but for the last chunk")
            up.data.extend(body)
            up.total = total if total is not None else up.total
        if up.total is not None and len(up.data) == up.total:
            with self.state.lock:
                if not up.done:
                    up.done = True
                    self.state.buckets[up.bucket][up.name] = (bytes(up.data), up.content_type, time.time())
                resource = self.object_resource(up.bucket, up.name, self.state.buckets[up.bucket][up.name])
            return self.reply(200, resource)
        headers = [("Range", "bytes=0-%d" % (len(up.data) - 1))] if up.data else []
        return self.reply(308, b"", "text/plain", headers)

    # -- downloads (signed URLs, public objects) ------------------------------

    def download(self, path, query):
        bucket, _, name = path.lstrip("/").partition("/")
        bucket, name = urllib.parse.unquote(bucket), urllib.parse.unquote(name)
        params = dict(query)
        if "X-Goog-Signature" in params:
            problem = self.check_signature(path, query)
            if problem:
                return self.xml_error(403, "SignatureDoesNotMatch" if "signature" in problem else "AccessDenied",
                                      problem)
        elif not self.state.args.public_read:
            return self.xml_error(403, "AccessDenied", "Anonymous caller does not have storage.objects.get access.")
        with self.state.lock:
            obj = self.state.buckets.get(bucket, {}).get(name)
        if obj is None:
            return self.xml_error(404, "NoSuchKey", "The specified key does not exist.")
        self.reply(200, bytes(obj[0]), obj[1])

    def check_signature(self, raw_path, query):
        params = dict(query)
        if self.state.public_key is None:
            return "this server has no service account to verify signatures with"
        if params.get("X-Goog-Algorithm") != "GOOG4-RSA-SHA256":
            return "unsupported algorithm"
        credential = params.get("X-Goog-Credential", "")
        if credential.split("/")[0] != self.state.args.client_email:
            return "the credential is not the service account"
        try:
            signed_at = calendar.timegm(time.strptime(params["X-Goog-Date"], "%Y%m%dT%H%M%SZ"))
            expires = int(params["X-Goog-Expires"])
        except (KeyError, ValueError):
            return "X-Goog-Date and X-Goog-Expires are required"
        if not 1 <= expires <= 604800:
            return "X-Goog-Expires must be between 1 and 604800"
        if time.time() > signed_at + expires:
            return "Request has expired"
        if signed_at > time.time() + 900:
            return "X-Goog-Date is in the future"
        signed_names = params.get("X-Goog-SignedHeaders", "").split(";")
        if "host" not in signed_names:
            return "the host header must be signed"
        headers = {k.lower(): v for k, v in self.headers.items()}
        # The method is part of what was signed: a URL signed for GET is
        # refused to a HEAD, as by Google.
        sts = v4_string_to_sign(self.command, raw_path,
                                [(k, v) for k, v in query if k != "X-Goog-Signature"], headers, signed_names)
        try:
            self.state.public_key.verify(bytes.fromhex(params["X-Goog-Signature"]), sts.encode(),
                                         padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            return "The request signature we calculated does not match the signature you provided."
        return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--bucket", action="append", default=[])
    parser.add_argument("--public-key", help="PEM public key of the service account")
    parser.add_argument("--client-email", default="")
    parser.add_argument("--no-auth", action="store_true", help="accept API calls without a token (emulator)")
    parser.add_argument("--public-read", action="store_true", help="serve unsigned downloads")
    parser.add_argument("--metadata", action="store_true", help="issue tokens on the metadata endpoint")
    parser.add_argument("--token-lifetime", type=int, default=3600)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--log")
    args = parser.parse_args()
    serve(args.port, Handler, State(args))


if __name__ == "__main__":
    main()
