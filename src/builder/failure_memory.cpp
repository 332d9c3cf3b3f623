#include "builder/failure_memory.hpp"

namespace nixery {

Result<std::optional<RegistryError>>
remembered_failure(BuildCache& cache, std::string_view image_key, std::int64_t now) {
    return cache.find_failure(image_key, now);
}

void remember_failure(BuildCache& cache, std::string_view image_key, const RegistryError& error,
                      std::int64_t now) {
    // A fault of the server (full disk, Nix daemon down) is not the
    // image's: the next pull tries again.
    if (error.status < 500) {
        (void)cache.remember_failure(image_key, error, now + k_failure_memory.count());
    }
}

} // namespace nixery
