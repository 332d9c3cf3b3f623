// A build's GC roots: a directory under the state directory where Nix links
// the outputs it realised, so nix-store --gc leaves them alone while they
// are packed; removed with everything in it when the build ends.
#pragma once

#include "util/result.hpp"

#include <cstdint>
#include <filesystem>

namespace nixery {

class GcRoots {
public:
    // STATE_DIR/gcroots/<build_id>, created.
    static Result<GcRoots> create(const std::filesystem::path& state_dir, std::int64_t build_id);
    GcRoots(GcRoots&& o) noexcept : m_dir(std::move(o.m_dir)) { o.m_dir.clear(); }
    GcRoots& operator=(GcRoots&&) = delete;
    GcRoots(const GcRoots&) = delete;
    ~GcRoots();

    // Where Nix links the realised outputs (nix-store --add-root).
    const std::filesystem::path& dir() const { return m_dir; }

private:
    explicit GcRoots(std::filesystem::path dir) : m_dir(std::move(dir)) {}
    std::filesystem::path m_dir;
};

} // namespace nixery
