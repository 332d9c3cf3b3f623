#include "builder/failure_memory.hpp"

namespace nixery {

Result<std::optional<RegistryError>>
remembered_failure(BuildCache& cache, std::string_view image_key, std::int64_t now) {
    return cache.find_failure(image_key, now);
}

void remember_failure(BuildCache& cache, std::string_view image_key, const RegistryError& error,
                      std::int64_t now) {
    const auto memory = error.status >= 500 ? k_fault_memory : k_failure_memory;
    (void)cache.remember_failure(image_key, error, now + memory.count());
}

} // namespace nixery
