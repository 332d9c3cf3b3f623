#include "builder/gc_roots.hpp"

#include "util/files.hpp"

#include <string>

namespace nixery {

Result<GcRoots> GcRoots::create(const std::filesystem::path& state_dir, std::int64_t build_id) {
    auto dir = state_dir / "gcroots" / std::to_string(build_id);
    TRY(make_dirs(dir));
    return GcRoots(std::move(dir));
}

GcRoots::~GcRoots() {
    if (!m_dir.empty()) {
        std::error_code ec;
        std::filesystem::remove_all(m_dir, ec);
    }
}

} // namespace nixery
