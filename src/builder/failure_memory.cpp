#include "builder/failure_memory.hpp"

namespace nixery {

Result<std::optional<Failure>> remembered_failure(BuildCache& cache, std::string_view image_key,
                                                  std::int64_t now) {
    return cache.find_failure(image_key, now, now + k_failure_horizon.count());
}

void remember_failure(BuildCache& cache, std::string_view image_key, const Failure& failure,
                      std::int64_t now) {
    const auto memory = is_transient(failure.kind) ? k_fault_memory : k_failure_memory;
    (void)cache.remember_failure(image_key, failure, now, now + memory.count(),
                                 now + k_failure_horizon.count());
}

} // namespace nixery
