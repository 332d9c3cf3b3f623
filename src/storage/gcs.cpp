// The Google Cloud Storage backend: objects in GCS_BUCKET under the same
// keys as the filesystem backend, through the JSON API
// (cloud.google.com/storage/docs/json_api), authenticated by gcs_auth, and
// served by a 307 to a V4-signed URL (gcs_signing) valid five minutes, or
// to the public object URL when there is no key to sign with.
//
// Atomic publication: GCS creates an object only when an upload completes.
// A single-request upload (uploadType=media) either arrives whole or not at
// all; a resumable upload (uploadType=resumable,
// cloud.google.com/storage/docs/resumable-uploads) makes the object when its
// last byte is received, so an interrupted session leaves nothing under the
// name, and a session that cannot finish is cancelled (DELETE on the
// session URI) or expires after a week. Uploading straight to the final
// name is therefore safe; a temporary name plus copy would only double the
// traffic. Staging files live under NIXERY_STATE_DIR/staging and are
// streamed chunk by chunk, never loaded into memory.
//
// Integrity: GCS checks an upload against a crc32c or MD5 the client
// declares, but neither is what a blob's name already gives (SHA-256), and
// computing one would read every layer a second time; uploads go without.

#include "storage/gcs.hpp"

#include "http/client.hpp"
#include "http/retry.hpp"
#include "http/url.hpp"
#include "storage/gcs_auth.hpp"
#include "storage/gcs_signing.hpp"
#include "storage/object_store.hpp"
#include "storage/sigv4.hpp"
#include "util/json.hpp"
#include "util/log.hpp"
#include "util/timestamp.hpp"

#include <ctime>
#include <rapidjson/document.h>
#include <set>
#include <thread>

namespace nixery {

namespace fs = std::filesystem;

namespace {

// Resumable uploads go in chunks of 8 MiB (a multiple of 256 KiB, as GCS
// requires); smaller staging files go up in one request.
constexpr std::uint64_t k_chunk_size = 8 << 20;
constexpr std::int64_t k_url_lifetime = 300;
constexpr std::string_view k_google = "https://storage.googleapis.com";

// "HTTP 403: <message>" from a JSON API error ({"error": {"message": …}}).
std::string gcs_status(const HttpResponse& r) {
    rapidjson::Document d;
    d.Parse<rapidjson::kParseIterativeFlag>(r.body.c_str(), r.body.size());
    if (!d.HasParseError() && d.IsObject() && d.HasMember("error") && d["error"].IsObject() &&
        d["error"].HasMember("message") && d["error"]["message"].IsString()) {
        return describe_status(r, d["error"]["message"].GetString());
    }
    return describe_status(r, r.body.size() < 200 ? r.body : std::string());
}

struct Request {
    std::string method = "GET";
    std::string url;
    QueryParams query;
    HttpHeaders headers;
    std::string body;
    std::optional<FileRange> file;
    std::function<bool(std::string_view)> on_data;
};

class GcsBackend final : public ObjectStoreBackend {
public:
    GcsBackend(GcsSettings settings, EndpointUrl api, std::optional<ServiceAccount> signer,
               bool emulator, fs::path staging)
        : ObjectStoreBackend(std::move(staging), k_chunk_size), m_s(std::move(settings)),
          m_api(std::move(api)), m_signer(std::move(signer)) {
        // The emulator convention (STORAGE_EMULATOR_HOST) is: no auth.
        if (emulator) {
            return;
        }
        if (m_signer) {
            m_tokens = service_account_tokens(*m_signer, m_http);
        } else {
            m_tokens = metadata_server_tokens(
                m_s.metadata_host.empty() ? "metadata.google.internal" : m_s.metadata_host, m_http);
        }
    }

    std::string describe() const override {
        return "gcs bucket \"" + m_s.bucket + "\" at " + m_api.base() +
               (m_tokens ? "" : " (emulator, no authentication)");
    }

    Result<void> check() override {
        Request list;
        list.url = bucket_url() + "/o";
        list.query = {{"maxResults", "1"}, {"fields", "items(name)"}};
        TRY_ASSIGN(const auto r, send(list, "list \"" + url_name("") + "\" at " + m_api.base()));
        if (r.status != 200) {
            std::string hint;
            if (r.status == 401 || r.status == 403) {
                hint = " (check GOOGLE_APPLICATION_CREDENTIALS and the account's access to the "
                       "bucket)";
            } else if (r.status == 404) {
                hint = " (does GCS_BUCKET exist?)";
            }
            return fail("list \"" + url_name("") + "\" at " + m_api.base() +
                        " failed: " + gcs_status(r) + hint);
        }
        return write_probe(*this);
    }

    Result<void> check_client_access() override {
        if (m_signer) {
            return {}; // signed URLs are valid wherever the key may read
        }
        return write_probe(*this,
                           [&](std::string_view probe) { return check_unsigned_read(probe); });
    }

    Result<std::optional<std::string>> fetch(std::string_view key) override {
        TRY(check_object_key(key));
        Request get;
        get.url = object_url(key);
        get.query = {{"alt", "media"}};
        TRY_ASSIGN(auto r, send(get, "get \"" + url_name(key) + "\""));
        if (r.status == 404) {
            return std::optional<std::string>();
        }
        if (r.status != 200) {
            return fail("get \"" + url_name(key) + "\" failed: " + gcs_status(r));
        }
        return std::optional<std::string>(std::move(r.body));
    }

    Result<bool> read(std::string_view key, const ObjectSink& sink) override {
        TRY(check_object_key(key));
        const auto what = "get \"" + url_name(key) + "\"";
        Request get;
        get.url = object_url(key);
        get.query = {{"alt", "media"}};
        std::optional<Error> refused;
        get.on_data = sink_into(sink, refused);
        auto r = send(get, what);
        return read_outcome(what, std::move(r), std::move(refused), gcs_status);
    }

    Result<std::optional<ObjectInfo>> stat(std::string_view key) override {
        TRY(check_object_key(key));
        const auto what = "get metadata of \"" + url_name(key) + "\"";
        Request get;
        get.url = object_url(key);
        get.query = {{"fields", "size,contentType,updated"}};
        TRY_ASSIGN(const auto r, send(get, what));
        if (r.status == 404) {
            return std::optional<ObjectInfo>();
        }
        if (r.status != 200) {
            return fail(what + " failed: " + gcs_status(r));
        }
        rapidjson::Document d;
        d.Parse<rapidjson::kParseIterativeFlag>(r.body.c_str(), r.body.size());
        if (d.HasParseError() || !d.IsObject()) {
            return fail(what + " failed: the answer is not a JSON object");
        }
        ObjectInfo info;
        // The JSON API sends 64-bit numbers as strings.
        if (d.HasMember("size") && d["size"].IsString()) {
            info.size = std::strtoull(d["size"].GetString(), nullptr, 10);
        }
        if (d.HasMember("contentType") && d["contentType"].IsString()) {
            info.content_type = d["contentType"].GetString();
        }
        if (d.HasMember("updated") && d["updated"].IsString()) {
            info.modified = parse_rfc3339(d["updated"].GetString()).value_or(0);
        }
        return std::optional<ObjectInfo>(std::move(info));
    }

    Result<BlobLocation> locate(std::string_view key) override {
        TRY(check_object_key(key));
        const auto path = m_api.path + "/" + m_s.bucket + "/" + std::string(key);
        if (!m_signer) {
            return BlobLocation{BlobLocation::Kind::redirect, m_api.scheme + "://" +
                                                                  m_api.authority +
                                                                  uri_encode(path, Slashes::keep)};
        }
        GcsUrlToSign url;
        url.scheme = m_api.scheme;
        url.host = m_api.authority;
        url.path = path;
        url.client_email = m_signer->client_email;
        url.timestamp = sigv4::timestamp(std::time(nullptr));
        url.expires_seconds = k_url_lifetime;
        TRY_ASSIGN(auto signed_url, gcs_signed_url(url, m_signer->key));
        return BlobLocation{BlobLocation::Kind::redirect, std::move(signed_url)};
    }

    Result<void> remove(std::string_view key) override {
        TRY(check_object_key(key));
        Request del;
        del.method = "DELETE";
        del.url = object_url(key);
        TRY_ASSIGN(const auto r, send(del, "delete \"" + url_name(key) + "\""));
        if (r.status != 204 && r.status != 200 && r.status != 404) {
            return fail("delete \"" + url_name(key) + "\" failed: " + gcs_status(r));
        }
        return {};
    }

    Result<std::vector<StoredObject>> list(std::string_view prefix) override {
        std::vector<StoredObject> out;
        std::string page;
        std::set<std::string> asked; // the page tokens sent
        do {
            Request get;
            get.url = bucket_url() + "/o";
            get.query = {{"prefix", std::string(prefix)},
                         {"fields", "items(name,size,updated),nextPageToken"}};
            if (!page.empty()) {
                get.query.emplace_back("pageToken", page);
            }
            TRY_ASSIGN(const auto r, send(get, "list \"" + url_name(prefix) + "\""));
            if (r.status != 200) {
                return fail("list \"" + url_name(prefix) + "\" failed: " + gcs_status(r));
            }
            rapidjson::Document d;
            d.Parse<rapidjson::kParseIterativeFlag>(r.body.c_str(), r.body.size());
            if (d.HasParseError() || !d.IsObject()) {
                return fail("list \"" + url_name(prefix) + "\" failed: the answer is not JSON");
            }
            if (d.HasMember("items") && d["items"].IsArray()) {
                for (const auto& item : d["items"].GetArray()) {
                    if (!item.IsObject() || !item.HasMember("name") || !item["name"].IsString()) {
                        continue;
                    }
                    StoredObject o;
                    o.key = item["name"].GetString();
                    // The JSON API sends 64-bit numbers as strings.
                    if (item.HasMember("size") && item["size"].IsString()) {
                        o.size = std::strtoull(item["size"].GetString(), nullptr, 10);
                    }
                    // gc decides by it: no time is no listing, not an old object.
                    const auto updated = item.HasMember("updated") && item["updated"].IsString()
                                             ? parse_rfc3339(item["updated"].GetString())
                                             : std::nullopt;
                    if (!updated) {
                        return fail("list \"" + url_name(prefix) + "\" failed: the store gave \"" +
                                    url_name(o.key) + "\" no readable \"updated\" time");
                    }
                    o.modified = *updated;
                    out.push_back(std::move(o));
                }
            }
            std::string next = d.HasMember("nextPageToken") && d["nextPageToken"].IsString()
                                   ? d["nextPageToken"].GetString()
                                   : "";
            // A store that answers with a token it was given before would
            // give the same pages for ever.
            asked.insert(page);
            if (!next.empty() && asked.count(next) != 0) {
                return fail("list \"" + url_name(prefix) +
                            "\" failed: the store gave the same page again");
            }
            page = std::move(next);
        } while (!page.empty());
        return out;
    }

private:
    // Without a key, clients get plain object URLs (locate()), which only a
    // bucket whose objects anyone may read answers: otherwise every pull
    // would fail at the store while the registry looks healthy.
    Result<void> check_unsigned_read(std::string_view probe) {
        TRY_ASSIGN(const auto where, locate(probe));
        HttpRequest get;
        get.url = where.location;
        const auto r = m_http.perform(get);
        if (!r) {
            return fail("get \"" + url_name(probe) + "\" without credentials, as clients will, " +
                        "failed: " + r.error().message);
        }
        if (r->status == 401 || r->status == 403) {
            return fail(
                "clients get blobs from unsigned URLs, since GOOGLE_APPLICATION_CREDENTIALS "
                "names no service-account key, and gs://" +
                m_s.bucket + " refuses them (" + gcs_status(*r) +
                "): set GOOGLE_APPLICATION_CREDENTIALS, or let allUsers read the bucket's "
                "objects");
        }
        if (r->status != 200) {
            return fail("get \"" + url_name(probe) + "\" without credentials, as clients will, " +
                        "failed: " + gcs_status(*r));
        }
        return {};
    }

    std::string bucket_url() const {
        return m_api.base() + "/storage/v1/b/" + uri_encode(m_s.bucket);
    }
    std::string object_url(std::string_view key) const {
        return bucket_url() + "/o/" + uri_encode(key);
    }
    std::string upload_url() const {
        return m_api.base() + "/upload/storage/v1/b/" + uri_encode(m_s.bucket) + "/o";
    }
    std::string url_name(std::string_view key) const {
        return "gs://" + m_s.bucket + "/" + std::string(key);
    }

    // One request with the bearer token, retried with backoff on transport
    // errors and 5xx/429; a 401 drops the token it carried and tries once
    // more. Errors are the cause alone.
    Result<HttpResponse> perform(const Request& request, const RetryPolicy& policy) {
        for (int round = 0;; ++round) {
            std::string token;
            auto made = [&]() -> Result<HttpRequest> {
                HttpRequest r;
                r.method = request.method;
                r.url =
                    request.url + (request.query.empty() ? "" : "?" + query_string(request.query));
                r.headers = request.headers;
                r.body = request.body;
                r.file = request.file;
                r.on_data = request.on_data;
                if (m_tokens) {
                    TRY_ASSIGN(token, m_tokens->token());
                    r.headers.emplace_back("Authorization", "Bearer " + token);
                }
                return r;
            };
            TRY_ASSIGN(auto r, perform_with_retries(m_http, made, policy));
            if (r.status == 401 && m_tokens && round == 0) {
                m_tokens->invalidate(token);
                continue;
            }
            return r;
        }
    }

    // perform() with the default policy; `what` names the
    // operation and its object for transport errors.
    Result<HttpResponse> send(const Request& request, const std::string& what) {
        auto r = perform(request, RetryPolicy{});
        if (!r) {
            return fail(what + " failed: " + r.error().message);
        }
        return r;
    }

    // A media upload (cloud.google.com/storage/docs/uploading-objects).
    Result<void> upload_whole(std::string_view key, std::string_view content_type,
                              std::string_view data, std::optional<FileRange> file) override {
        Request post;
        post.method = "POST";
        post.url = upload_url();
        post.query = {{"uploadType", "media"}, {"name", std::string(key)}};
        post.headers = {{"Content-Type", std::string(content_type)}};
        post.body = std::string(data);
        post.file = file;
        TRY_ASSIGN(const auto r, send(post, "upload \"" + url_name(key) + "\""));
        if (r.status != 200 && r.status != 201) {
            return fail("upload \"" + url_name(key) + "\" failed: " + gcs_status(r));
        }
        return {};
    }

    // A resumable upload, in chunks of k_chunk_size.
    Result<void> upload_in_parts(std::string_view key, std::string_view content_type, int fd,
                                 std::uint64_t size) override {
        const auto name = url_name(key);
        Request start;
        start.method = "POST";
        start.url = upload_url();
        start.query = {{"uploadType", "resumable"}, {"name", std::string(key)}};
        start.headers = {{"Content-Type", "application/json; charset=UTF-8"},
                         {"X-Upload-Content-Type", std::string(content_type)},
                         {"X-Upload-Content-Length", std::to_string(size)}};
        start.body = json_object({{"contentType", std::string(content_type)}});
        TRY_ASSIGN(const auto r, send(start, "start upload \"" + name + "\""));
        const auto session = r.header("location");
        if (r.status != 200 || session.empty()) {
            return fail("start upload \"" + name + "\" failed: " + gcs_status(r));
        }
        auto sent = send_chunks(session, name, fd, size);
        if (!sent) {
            // Nothing was created; cancelling frees the session at once.
            Request cancel;
            cancel.method = "DELETE";
            cancel.url = session;
            auto cancelled = perform(cancel, RetryPolicy{.attempts = 1});
            if (!cancelled) {
                log::warn("cancelling an upload failed",
                          {{"key", name}, {"error", cancelled.error().message}});
            }
        }
        return sent;
    }

    // Sends [0, size) in chunks; after a failed chunk asks the session how
    // much it has and resumes from there
    // (cloud.google.com/storage/docs/performing-resumable-uploads#status-check).
    // Gives up after four failures in a row, where a chunk the session
    // kept nothing of counts as one: only progress resets the count.
    Result<void> send_chunks(const std::string& session, const std::string& name, int fd,
                             std::uint64_t size) {
        const RetryPolicy once{.attempts = 1};
        const RetryPolicy backoff{};
        const auto what = "upload \"" + name + "\"";
        std::uint64_t offset = 0;
        int failures = 0;
        bool ask = false;
        std::string last_error;
        for (;;) {
            Request put;
            put.method = "PUT";
            put.url = session;
            const bool asking = ask;
            if (asking) {
                put.headers = {{"Content-Range", "bytes */" + std::to_string(size)}};
            } else {
                const auto length = std::min(k_chunk_size, size - offset);
                put.headers = {{"Content-Range", "bytes " + std::to_string(offset) + "-" +
                                                     std::to_string(offset + length - 1) + "/" +
                                                     std::to_string(size)}};
                put.file = FileRange{fd, offset, length};
            }
            auto r = perform(put, once);
            if (!r || is_retryable_status(r->status)) {
                last_error = r ? gcs_status(*r) : r.error().message;
                ask = true;
            } else if (r->status == 200 || r->status == 201) {
                return {};
            } else if (r->status != 308) {
                return fail(what + " failed: " + gcs_status(*r));
            } else {
                // 308: "Range: bytes=0-N" is what the session has persisted.
                const auto before = offset;
                const auto range = r->header("range");
                const auto dash = range.rfind('-');
                offset = dash == std::string::npos
                             ? 0
                             : std::strtoull(range.c_str() + dash + 1, nullptr, 10) + 1;
                if (offset >= size) {
                    return fail(what + " failed: the session has every byte but did not finish");
                }
                ask = false;
                if (offset > before) {
                    failures = 0;
                    continue;
                }
                if (asking) {
                    continue; // the failure that made us ask is counted
                }
                last_error = "the session kept nothing of the chunk at " + std::to_string(before);
            }
            if (++failures >= backoff.attempts) {
                break;
            }
            std::this_thread::sleep_for(backoff_delay(backoff, failures, 0.5));
        }
        return fail(what + " failed after " + std::to_string(failures) +
                    " attempts: " + last_error);
    }

    GcsSettings m_s;
    EndpointUrl m_api;
    std::optional<ServiceAccount> m_signer;
    HttpClient m_http;
    std::unique_ptr<AccessTokens> m_tokens; // null for an emulator
};

} // namespace

Result<std::unique_ptr<StorageBackend>> make_gcs_storage(const GcsSettings& settings,
                                                         const fs::path& state_dir) {
    EndpointUrl api;
    const bool emulator = !settings.emulator_host.empty();
    if (emulator) {
        // Google's libraries accept "host:port" as well as a URL here.
        const auto& host = settings.emulator_host;
        TRY_ASSIGN(api,
                   parse_endpoint(host.find("://") == std::string::npos ? "http://" + host : host,
                                  "STORAGE_EMULATOR_HOST"));
    } else {
        TRY_ASSIGN(api, parse_endpoint(settings.endpoint.empty() ? std::string(k_google)
                                                                 : settings.endpoint,
                                       "GCS_ENDPOINT"));
    }
    std::optional<ServiceAccount> signer;
    if (!settings.credentials.empty()) {
        TRY_ASSIGN(auto account, load_service_account(settings.credentials));
        signer = std::move(account);
    }
    const auto staging = state_dir / "staging";
    TRY(make_dirs(staging));
    return std::unique_ptr<StorageBackend>(std::make_unique<GcsBackend>(
        settings, std::move(api), std::move(signer), emulator, staging));
}

} // namespace nixery
