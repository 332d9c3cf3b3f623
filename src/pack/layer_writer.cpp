#include "pack/layer_writer.hpp"

#include "pack/compressor.hpp"
#include "pack/tar.hpp"
#include "util/files.hpp"
#include "util/sha256.hpp"

#include <cerrno>
#include <unistd.h>
#include <vector>

namespace nixery {

namespace {

constexpr std::size_t k_chunk = 1 << 20;

std::span<const unsigned char> bytes(std::string_view s) {
    return {reinterpret_cast<const unsigned char*>(s.data()), s.size()};
}

} // namespace

struct LayerWriter::Impl {
    int out_fd = -1;
    std::filesystem::path what;
    std::unique_ptr<Compressor> compressor;
    Sha256 tar_hash;
    Sha256 blob_hash;
    std::uint64_t blob_size = 0;
    std::vector<char> io = std::vector<char>(k_chunk);

    Result<void> emit(std::string_view compressed) {
        blob_hash.update(compressed);
        blob_size += compressed.size();
        return write_all(out_fd, compressed, what);
    }

    Result<void> put(std::string_view tar_bytes) {
        tar_hash.update(tar_bytes);
        return compressor->write(bytes(tar_bytes));
    }

    Result<void> entry(const TarHeader& h) {
        if (h.path.find('\0') != std::string_view::npos ||
            h.link.find('\0') != std::string_view::npos) {
            return fail("add \"" + std::string(h.path) + "\" into layer failed: NUL in a name");
        }
        return put(tar_header(h));
    }

    Result<void> pad(std::uint64_t size) { return put(tar_end().substr(0, tar_padding(size))); }
};

LayerWriter::LayerWriter(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
LayerWriter::~LayerWriter() = default;

Result<std::unique_ptr<LayerWriter>> LayerWriter::open(int out_fd, std::filesystem::path what,
                                                       PackOptions options) {
    auto impl = std::make_unique<Impl>();
    impl->out_fd = out_fd;
    impl->what = std::move(what);
    Impl* self = impl.get();
    TRY_ASSIGN(impl->compressor,
               make_compressor(options.compression, options.threads,
                               [self](std::string_view data) { return self->emit(data); }));
    return std::unique_ptr<LayerWriter>(new LayerWriter(std::move(impl)));
}

Result<void> LayerWriter::add_directory(std::string_view path, mode_t mode) {
    return m_impl->entry({path, TarType::directory, mode, 0, {}});
}

Result<void> LayerWriter::add_symlink(std::string_view path, std::string_view target) {
    return m_impl->entry({path, TarType::symlink, 0777, 0, target});
}

Result<void> LayerWriter::add_hardlink(std::string_view path, std::string_view target) {
    return m_impl->entry({path, TarType::hardlink, 0444, 0, target});
}

Result<void> LayerWriter::add_file(std::string_view path, mode_t mode, int fd, std::uint64_t size,
                                   const std::filesystem::path& source) {
    TRY(m_impl->entry({path, TarType::file, mode, size, {}}));
    std::uint64_t left = size;
    while (left > 0) {
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(left, k_chunk));
        const auto n = ::read(fd, m_impl->io.data(), want);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return fail("read \"" + source.string() + "\" failed: " + errno_text(errno));
        }
        if (n == 0) {
            return fail("read \"" + source.string() + "\" failed: file shrank while packing");
        }
        TRY(m_impl->put(std::string_view(m_impl->io.data(), static_cast<std::size_t>(n))));
        left -= static_cast<std::uint64_t>(n);
    }
    return m_impl->pad(size);
}

Result<void> LayerWriter::add_file_data(std::string_view path, mode_t mode, std::string_view data) {
    TRY(m_impl->entry({path, TarType::file, mode, data.size(), {}}));
    TRY(m_impl->put(data));
    return m_impl->pad(data.size());
}

Result<PackedLayer> LayerWriter::finish() {
    TRY(m_impl->put(tar_end()));
    TRY(m_impl->compressor->finish());
    PackedLayer out;
    out.diff_id = "sha256:" + m_impl->tar_hash.finish_hex();
    out.digest = "sha256:" + m_impl->blob_hash.finish_hex();
    out.size = m_impl->blob_size;
    return out;
}

} // namespace nixery
