// The S3 backend, for AWS and S3-compatible stores (MinIO, Garage, Ceph RGW,
// R2, B2, …): objects in S3_BUCKET under the same keys as the filesystem
// backend, requests signed with SigV4 (sigv4.hpp), blobs served by a 307 to
// a presigned GET URL valid for five minutes.
//
// Atomic publication: S3 creates an object only when a PUT completes, or
// when CompleteMultipartUpload stitches the parts of a multipart upload
// together; until then nothing exists under the key. A failed multipart
// upload is aborted so its parts do not linger (best effort: if the store
// is gone, a bucket lifecycle rule for incomplete uploads cleans up).
// Staging files live under NIXERY_STATE_DIR/staging and are streamed part
// by part, never loaded into memory.
//
// Integrity: a single PUT of a blob says what the object must hash to
// (x-amz-checksum-sha256, docs.aws.amazon.com/AmazonS3/latest/userguide/
// checking-object-integrity.html), which costs nothing since a blob's key
// is its SHA-256; the store refuses a body that differs. Multipart uploads
// go without: they would need a checksum per part, one more read of each.
// So do all uploads to a store that refuses the header (Backblaze B2,
// Google's S3 API), once it has refused it.

#include "storage/s3.hpp"

#include "http/client.hpp"
#include "http/retry.hpp"
#include "storage/layout.hpp"
#include "storage/object_store.hpp"
#include "storage/sigv4.hpp"
#include "storage/xml.hpp"
#include "util/crypto.hpp"
#include "util/log.hpp"
#include "util/markup.hpp"
#include "util/sha256.hpp"
#include "util/text.hpp"
#include "util/timestamp.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <atomic>
#include <cctype>
#include <ctime>
#include <set>

namespace nixery {

namespace fs = std::filesystem;

namespace {

// Parts of 8 MiB (S3 wants at least 5 MiB but the last); smaller staging
// files go up in a single PUT.
constexpr std::uint64_t k_part_size = 8 << 20;
constexpr std::int64_t k_url_lifetime = 300;

// "HTTP 403 AccessDenied: Access Denied" from an S3 error document.
std::string s3_status(const HttpResponse& r) {
    const auto code = xml::text(r.body, "Code");
    const auto message = xml::text(r.body, "Message");
    return describe_status(r,
                           code.empty() ? message : code + (message.empty() ? "" : ": " + message));
}

// base64 of the raw SHA-256 a blob key "layers/<hex>" names; nullopt for
// any other key (records, probes), whose content is not their name.
std::optional<std::string> blob_checksum(std::string_view key) {
    if (key.substr(0, k_blob_prefix.size()) != k_blob_prefix) {
        return std::nullopt;
    }
    const auto hex = key.substr(k_blob_prefix.size());
    if (!is_lower_hex(hex, 64)) {
        return std::nullopt;
    }
    std::string raw;
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        raw += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
    }
    return base64_encode(raw);
}

class S3Backend final : public ObjectStoreBackend {
public:
    S3Backend(S3Settings settings, EndpointUrl endpoint, fs::path staging)
        : ObjectStoreBackend(std::move(staging), k_part_size), m_s(std::move(settings)),
          m_endpoint(std::move(endpoint)), m_credentials{m_s.access_key_id, m_s.secret_access_key,
                                                         m_s.session_token} {}

    std::string describe() const override {
        return "s3 bucket \"" + m_s.bucket + "\" at " + m_endpoint.base() +
               (m_s.path_style ? " (path style)" : "");
    }

    Result<void> check() override {
        // Listing proves the bucket exists and the credentials are accepted;
        // the probe proves they may write and delete.
        const auto what = "list \"" + url_name("") + "\"";
        TRY_ASSIGN(const auto r,
                   send(what, "GET", "", {{"list-type", "2"}, {"max-keys", "1"}}, {}));
        if (r.status != 200) {
            std::string hint;
            const auto code = xml::text(r.body, "Code");
            if (r.status == 403 || code == "InvalidAccessKeyId" ||
                code == "SignatureDoesNotMatch") {
                hint = " (check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and S3_REGION)";
            } else if (code == "NoSuchBucket" || r.status == 404) {
                hint = " (does S3_BUCKET exist at S3_ENDPOINT?)";
            }
            return fail(what + " at " + m_endpoint.base() + " failed: " + s3_status(r) + hint);
        }
        return write_probe(*this);
    }

    Result<std::optional<std::string>> fetch(std::string_view key) override {
        TRY(check_object_key(key));
        const auto what = "get \"" + url_name(key) + "\"";
        TRY_ASSIGN(auto r, send(what, "GET", key, {}, {}));
        if (r.status == 404) {
            return std::optional<std::string>();
        }
        if (r.status != 200) {
            return fail(what + " failed: " + s3_status(r));
        }
        return std::optional<std::string>(std::move(r.body));
    }

    Result<bool> read(std::string_view key, const ObjectSink& sink) override {
        TRY(check_object_key(key));
        const auto what = "get \"" + url_name(key) + "\"";
        std::optional<Error> refused;
        auto r = send(what, "GET", key, {}, {}, {}, std::nullopt, sink_into(sink, refused));
        return read_outcome(what, std::move(r), std::move(refused), s3_status);
    }

    Result<std::optional<ObjectInfo>> stat(std::string_view key) override {
        TRY(check_object_key(key));
        const auto what = "head \"" + url_name(key) + "\"";
        TRY_ASSIGN(const auto r, send(what, "HEAD", key, {}, {}));
        if (r.status == 404) {
            return std::optional<ObjectInfo>();
        }
        if (r.status != 200) {
            // A HEAD answer has no body to read an error code from.
            return fail(what + " failed: " + describe_status(r, {}));
        }
        ObjectInfo info;
        info.size = std::strtoull(r.header("content-length").c_str(), nullptr, 10);
        info.content_type = r.header("content-type");
        info.modified = parse_http_date(r.header("last-modified")).value_or(0);
        return std::optional<ObjectInfo>(std::move(info));
    }

    Result<BlobLocation> locate(std::string_view key) override {
        TRY(check_object_key(key));
        const auto t = target(key);
        sigv4::Request request;
        request.method = "GET";
        request.path = t.path;
        request.headers = {{"host", t.host}};
        if (m_credentials.access_key_id.empty()) {
            return BlobLocation{BlobLocation::Kind::redirect, t.url};
        }
        const auto query = sigv4::presigned_query(request, m_credentials, scope(std::time(nullptr)),
                                                  k_url_lifetime);
        return BlobLocation{BlobLocation::Kind::redirect, t.url + "?" + query};
    }

    Result<void> remove(std::string_view key) override {
        TRY(check_object_key(key));
        const auto what = "delete \"" + url_name(key) + "\"";
        TRY_ASSIGN(const auto r, send(what, "DELETE", key, {}, {}));
        if (r.status != 204 && r.status != 200 && r.status != 404) {
            return fail(what + " failed: " + s3_status(r));
        }
        return {};
    }

    // Every object under `prefix`. gc decides by these times, so an object
    // whose time cannot be read fails the listing rather than pass as old.
    Result<std::vector<StoredObject>> list(std::string_view prefix) override {
        std::vector<StoredObject> out;
        const auto what = "list \"" + url_name(prefix) + "\"";
        std::set<QueryParams> asked; // where pages were asked for
        for (QueryParams next;;) {
            QueryParams query{{"list-type", "2"}, {"prefix", std::string(prefix)}};
            query.insert(query.end(), next.begin(), next.end());
            TRY_ASSIGN(const auto r, send(what, "GET", "", query, {}));
            if (r.status != 200) {
                return fail(what + " failed: " + s3_status(r));
            }
            const auto page_start = out.size();
            for (const auto contents : xml::elements(r.body, "Contents")) {
                StoredObject o;
                o.key = xml::text(contents, "Key");
                o.size = std::strtoull(xml::text(contents, "Size").c_str(), nullptr, 10);
                const auto modified = xml::text(contents, "LastModified");
                const auto time = parse_rfc3339(modified);
                if (!time) {
                    return fail(what + " failed: the store gave \"" + url_name(o.key) +
                                "\" a LastModified that is not a time: \"" + modified + "\"");
                }
                o.modified = *time;
                out.push_back(std::move(o));
            }
            if (xml::text(r.body, "IsTruncated") != "true") {
                return out;
            }
            // Some stores truncate without a continuation token; the last
            // key says where to go on (start-after, in ListObjectsV2 too).
            // A store that names a place it was asked about before would
            // give the same pages for ever: that fails the listing.
            QueryParams after;
            if (auto token = xml::text(r.body, "NextContinuationToken"); !token.empty()) {
                after = {{"continuation-token", std::move(token)}};
            } else if (out.size() > page_start) {
                after = {{"start-after", out.back().key}};
            } else {
                return fail(what + " failed: the store said the listing goes on but not where");
            }
            asked.insert(std::move(next));
            if (asked.count(after) != 0) {
                return fail(what + " failed: the store gave the same page again");
            }
            next = std::move(after);
        }
    }

private:
    struct Target {
        std::string url;  // without a query
        std::string host; // the Host header, which is signed
        std::string path; // not encoded
    };

    // Virtual-host style puts the bucket in the host name, path style in
    // the path (docs.aws.amazon.com/AmazonS3/latest/userguide/VirtualHosting.html).
    Target target(std::string_view key) const {
        Target t;
        if (m_s.path_style) {
            t.host = m_endpoint.authority;
            t.path =
                m_endpoint.path + "/" + m_s.bucket + (key.empty() ? "" : "/" + std::string(key));
        } else {
            t.host = m_s.bucket + "." + m_endpoint.authority;
            t.path = m_endpoint.path + "/" + std::string(key);
        }
        t.url = m_endpoint.scheme + "://" + t.host + sigv4::canonical_uri(t.path);
        return t;
    }

    std::string url_name(std::string_view key) const {
        return "s3://" + m_s.bucket + "/" + std::string(key);
    }

    sigv4::Scope scope(std::time_t now) const { return {sigv4::timestamp(now), m_s.region, "s3"}; }

    // One signed request, retried with backoff on transport errors and
    // 5xx/429 (and what `policy` adds). `what` is the operation and its
    // object ("upload \"s3://b/k\""); transport errors come back worded
    // with it.
    Result<HttpResponse> send(const std::string& what, const std::string& method,
                              std::string_view key, const QueryParams& query,
                              const HttpHeaders& extra, std::string_view body = {},
                              std::optional<FileRange> file = std::nullopt,
                              const std::function<bool(std::string_view)>& on_data = {},
                              const RetryPolicy& policy = {}) {
        const auto t = target(key);
        const auto payload_hash = file ? std::string(sigv4::k_unsigned_payload) : sha256_hex(body);
        auto made = [&]() -> Result<HttpRequest> {
            HttpRequest r;
            r.method = method;
            r.url = t.url + (query.empty() ? "" : "?" + sigv4::canonical_query(query));
            r.body = std::string(body);
            r.file = file;
            r.on_data = on_data;
            sigv4::Request s;
            s.method = method;
            s.path = t.path;
            s.query = query;
            s.payload_hash = payload_hash;
            s.headers = {{"host", t.host}};
            for (const auto& h : extra) {
                s.headers.push_back(h);
            }
            // One clock reading per attempt, for the header and the scope.
            r.headers = sigv4::sign(std::move(s), m_credentials, scope(std::time(nullptr)));
            return r;
        };
        auto r = perform_with_retries(m_http, made, policy);
        if (!r) {
            return fail(what + " at " + m_endpoint.base() + " failed: " + r.error().message);
        }
        return r;
    }

    Result<void> upload_whole(std::string_view key, std::string_view content_type,
                              std::string_view data, std::optional<FileRange> file) override {
        const auto what = "upload \"" + url_name(key) + "\"";
        HttpHeaders headers{{"content-type", std::string(content_type)}};
        auto checksum = m_checksums.load() ? blob_checksum(key) : std::nullopt;
        if (checksum) {
            headers.emplace_back("x-amz-checksum-sha256", *checksum);
        }
        TRY_ASSIGN(auto r, send(what, "PUT", key, {}, headers, data, file));
        if (checksum && refuses_checksums(r)) {
            // Backblaze B2, Google's S3 interoperability API and others
            // answer "Unsupported header 'x-amz-checksum-sha256'": go on
            // without it, as with multipart uploads.
            log::warn("the store refuses x-amz-checksum-sha256; uploading without it",
                      {{"endpoint", m_endpoint.base()}, {"error", s3_status(r)}});
            m_checksums = false;
            headers.pop_back();
            TRY_ASSIGN(r, send(what, "PUT", key, {}, headers, data, file));
        }
        if (r.status != 200) {
            return fail(what + " failed: " + s3_status(r));
        }
        return {};
    }

    // A refusal of the checksum header itself (not BadDigest: a body that
    // does not match is refused for good).
    static bool refuses_checksums(const HttpResponse& r) {
        if (r.status != 400 && r.status != 501) {
            return false;
        }
        return xml::text(r.body, "Code") != "BadDigest" &&
               ascii_lowercase(r.body).find("x-amz-checksum") != std::string::npos;
    }

    // A multipart upload, in parts of s3_part_size().
    Result<void> upload_in_parts(std::string_view key, std::string_view content_type, int fd,
                                 std::uint64_t size) override {
        const auto what = "start multipart upload \"" + url_name(key) + "\"";
        TRY_ASSIGN(const auto init, send(what, "POST", key, {{"uploads", ""}},
                                         {{"content-type", std::string(content_type)}}));
        const auto upload_id = xml::text(init.body, "UploadId");
        if (init.status != 200 || upload_id.empty()) {
            return fail(what + " failed: " + s3_status(init));
        }
        auto uploaded = upload_parts(fd, size, key, upload_id);
        if (!uploaded) {
            auto aborted = send("abort multipart upload \"" + url_name(key) + "\"", "DELETE", key,
                                {{"uploadId", upload_id}}, {});
            if (!aborted || (aborted->status != 204 && aborted->status != 200)) {
                log::warn("aborting multipart upload failed",
                          {{"key", url_name(key)},
                           {"error", aborted ? s3_status(*aborted) : aborted.error().message}});
            }
            return uploaded;
        }
        return {};
    }

    Result<void> upload_parts(int fd, std::uint64_t size, std::string_view key,
                              const std::string& upload_id) {
        std::string complete = "<CompleteMultipartUpload>";
        int number = 1;
        const auto part_size = s3_part_size(size);
        for (std::uint64_t offset = 0; offset < size; offset += part_size, ++number) {
            const auto length = std::min(part_size, size - offset);
            const auto what =
                "upload part " + std::to_string(number) + " of \"" + url_name(key) + "\"";
            TRY_ASSIGN(const auto r,
                       send(what, "PUT", key,
                            {{"partNumber", std::to_string(number)}, {"uploadId", upload_id}}, {},
                            {}, FileRange{fd, offset, length}));
            const auto etag = r.header("etag");
            if (r.status != 200 || etag.empty()) {
                return fail(what + " failed: " + s3_status(r));
            }
            complete += "<Part><PartNumber>" + std::to_string(number) + "</PartNumber><ETag>" +
                        escape_markup(etag) + "</ETag></Part>";
        }
        complete += "</CompleteMultipartUpload>";
        const auto what = "complete multipart upload \"" + url_name(key) + "\"";
        // S3 may answer 200 and still report an error in the body: the
        // completion failed after the answer began, and AWS asks clients to
        // try again (its SDKs do), as after a 5xx.
        RetryPolicy policy;
        policy.retry_also = [](const HttpResponse& r) {
            return r.status == 200 && !xml::elements(r.body, "Error").empty();
        };
        TRY_ASSIGN(const auto r,
                   send(what, "POST", key, {{"uploadId", upload_id}},
                        {{"content-type", "application/xml"}}, complete, {}, {}, policy));
        if (r.status == 404 && xml::text(r.body, "Code") == "NoSuchUpload") {
            // A retry after the answer to a completion that succeeded was
            // lost finds the upload gone. The object is there if it has
            // the size we sent; blob keys name their content, so that
            // object is this one.
            TRY_ASSIGN(const auto info, stat(key));
            if (info && info->size == size) {
                return {};
            }
        }
        if (r.status != 200 || !xml::elements(r.body, "Error").empty()) {
            return fail(what + " failed: " + s3_status(r));
        }
        return {};
    }

    S3Settings m_s;
    EndpointUrl m_endpoint;
    sigv4::Credentials m_credentials;
    HttpClient m_http;
    std::atomic<bool> m_checksums{true};
};

bool is_ip_literal(const std::string& host) {
    in_addr v4{};
    return (!host.empty() && host.front() == '[') || ::inet_pton(AF_INET, host.c_str(), &v4) == 1;
}

// Virtual-host addressing names the bucket in the host name, which needs
// a domain under which "<bucket>." resolves, and, over https, a
// certificate for it: a wildcard covers one label, so not a dotted bucket.
Result<void> check_virtual_host(const S3Settings& settings, const EndpointUrl& endpoint,
                                const std::string& endpoint_text) {
    if (settings.path_style) {
        return {};
    }
    const auto host = ascii_lowercase(endpoint.host());
    if (host == "localhost" || host == "localhost." || is_ip_literal(host)) {
        return fail("S3_ENDPOINT=\"" + endpoint_text +
                    "\" has no domain to put the bucket name in front of, as virtual-host "
                    "addressing does: set S3_PATH_STYLE=true");
    }
    if (endpoint.scheme == "https" && settings.bucket.find('.') != std::string::npos) {
        return fail("S3_BUCKET=\"" + settings.bucket + "\" has dots: in virtual-host addressing " +
                    "its host name \"" + settings.bucket + "." + endpoint.host() +
                    "\" is not covered by the store's TLS certificate: set S3_PATH_STYLE=true");
    }
    return {};
}

} // namespace

// S3 takes at most 10,000 parts (docs.aws.amazon.com/AmazonS3/latest/
// userguide/qfacts.html): past 10,000 × 8 MiB (78 GiB), parts grow, in
// whole MiB.
std::uint64_t s3_part_size(std::uint64_t size) {
    constexpr std::uint64_t max_parts = 10000;
    constexpr std::uint64_t mib = 1 << 20;
    const auto needed = (size + max_parts - 1) / max_parts;
    return std::max(k_part_size, (needed + mib - 1) / mib * mib);
}

Result<std::unique_ptr<StorageBackend>> make_s3_storage(const S3Settings& settings,
                                                        const fs::path& state_dir) {
    const auto endpoint_text = settings.endpoint.empty()
                                   ? "https://s3." + settings.region + ".amazonaws.com"
                                   : settings.endpoint;
    TRY_ASSIGN(auto endpoint, parse_endpoint(endpoint_text, "S3_ENDPOINT"));
    TRY(check_virtual_host(settings, endpoint, endpoint_text));
    const auto staging = state_dir / "staging";
    TRY(make_dirs(staging));
    return std::unique_ptr<StorageBackend>(
        std::make_unique<S3Backend>(settings, std::move(endpoint), staging));
}

} // namespace nixery
