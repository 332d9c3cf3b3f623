// What the object-store backends (gcs.cpp, s3.cpp) share: the key check,
// the choice between one upload request and an upload in parts, streamed
// from the staging file, and the start-up write probe. Not for the
// filesystem backend, which renames instead of uploading.
#pragma once

#include "http/client.hpp"
#include "storage/backend.hpp"

#include <cstdint>
#include <functional>
#include <optional>

namespace nixery {

// Keys come from digests and hashes the callers computed, never from a
// request; anything else is a bug to stop before it names a wrong object.
Result<void> check_object_key(std::string_view key);

// persist() and put() for a store: a body of up to `part_size` bytes goes
// up in one request, a larger staging file in parts of at least that size
// (the backend chooses: S3 grows them to stay within 10,000 parts). Both
// read the staging file by ranges, never into memory.
class ObjectStoreBackend : public StorageBackend {
public:
    const std::filesystem::path& staging_dir() const final { return m_staging; }
    // `staged` is removed when this returns, uploaded or not.
    Result<void> persist(StagingFile staged, std::string_view key,
                         std::string_view content_type) final;
    Result<void> put(std::string_view key, std::string_view data,
                     std::string_view content_type) final;

protected:
    ObjectStoreBackend(std::filesystem::path staging, std::uint64_t part_size)
        : m_staging(std::move(staging)), m_part_size(part_size) {}

    // One request; the body is `file` when set, `data` otherwise.
    virtual Result<void> upload_whole(std::string_view key, std::string_view content_type,
                                      std::string_view data, std::optional<FileRange> file) = 0;
    // The `size` bytes of `fd`, in parts of part_size.
    virtual Result<void> upload_in_parts(std::string_view key, std::string_view content_type,
                                         int fd, std::uint64_t size) = 0;

private:
    std::filesystem::path m_staging;
    std::uint64_t m_part_size;
};

// An HttpRequest::on_data that hands the pieces to `sink`; the first error
// of `sink` stops the transfer and is kept in `refused`.
std::function<bool(std::string_view)> sink_into(const ObjectSink& sink,
                                                std::optional<Error>& refused);

// What a GET streamed through sink_into() came to: true for 200, false for
// 404, else an error saying `what` failed: the sink's refusal first, then
// the transport's error, then the status as `status` words it.
Result<bool> read_outcome(const std::string& what, Result<HttpResponse> response,
                          std::optional<Error> refused, std::string (*status)(const HttpResponse&));

// Writes and deletes "probes/<host>-<pid>": proves at start-up that the
// credentials may write and delete, not only read. `while_there`, when
// given, runs on the probe's key between the two; the probe goes either way.
Result<void> write_probe(StorageBackend& storage,
                         const std::function<Result<void>(std::string_view key)>& while_there = {});

} // namespace nixery
