#include "storage/object_store.hpp"

#include "storage/layout.hpp"

#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace nixery {

Result<void> check_object_key(std::string_view key) {
    if (key.empty() || key.front() == '/' || key.find("..") != std::string_view::npos ||
        key.find('\0') != std::string_view::npos) {
        return fail("storage key \"" + std::string(key) + "\" is not a relative object name");
    }
    return {};
}

Result<void> ObjectStoreBackend::persist(StagingFile staged, std::string_view key,
                                         std::string_view content_type) {
    TRY(check_object_key(key));
    const UniqueFd fd(::open(staged.path().c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st {};
    if (!fd || ::fstat(fd.get(), &st) != 0) {
        return fail("open \"" + staged.path().string() + "\" failed: " + errno_text(errno));
    }
    const auto size = static_cast<std::uint64_t>(st.st_size);
    if (size <= m_part_size) {
        return upload_whole(key, content_type, {}, FileRange{fd.get(), 0, size});
    }
    return upload_in_parts(key, content_type, fd.get(), size);
}

Result<void> ObjectStoreBackend::put(std::string_view key, std::string_view data,
                                     std::string_view content_type) {
    TRY(check_object_key(key));
    return upload_whole(key, content_type, data, std::nullopt);
}

Result<void> write_probe(StorageBackend& storage,
                         const std::function<Result<void>(std::string_view key)>& while_there) {
    char host[256] = "host";
    ::gethostname(host, sizeof host - 1);
    const auto probe =
        std::string(k_probe_prefix) + std::string(host) + "-" + std::to_string(::getpid());
    TRY(storage.put(probe, "probe", "text/plain"));
    const auto checked = while_there ? while_there(probe) : Result<void>();
    TRY(storage.remove(probe));
    return checked;
}

std::function<bool(std::string_view)> sink_into(const ObjectSink& sink,
                                                std::optional<Error>& refused) {
    return [&sink, &refused](std::string_view piece) {
        auto taken = sink(piece);
        if (!taken) {
            refused = std::move(taken.error());
            return false;
        }
        return true;
    };
}

Result<bool> read_outcome(const std::string& what, Result<HttpResponse> response,
                          std::optional<Error> refused,
                          std::string (*status)(const HttpResponse&)) {
    if (refused) {
        return fail(what + " failed: " + refused->message);
    }
    if (!response) {
        return unexpected(std::move(response.error()));
    }
    if (response->status == 404) {
        return false;
    }
    if (response->status != 200) {
        return fail(what + " failed: " + status(*response));
    }
    return true;
}

} // namespace nixery
