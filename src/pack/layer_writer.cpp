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
    struct Output {
        int fd = -1;
        std::filesystem::path what;
        std::unique_ptr<Compressor> compressor;
        Sha256 blob_hash;
        std::uint64_t blob_size = 0;

        Result<void> emit(std::string_view compressed) {
            blob_hash.update(compressed);
            blob_size += compressed.size();
            return write_all(fd, compressed, what);
        }
    };
    // Pointers: each compressor's sink holds its output's address.
    std::vector<std::unique_ptr<Output>> outputs;
    Sha256 tar_hash;
    std::vector<char> io = std::vector<char>(k_chunk);

    Result<void> put(std::string_view tar_bytes) {
        tar_hash.update(tar_bytes);
        for (auto& out : outputs) {
            TRY(out->compressor->write(bytes(tar_bytes)));
        }
        return {};
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

Result<std::unique_ptr<LayerWriter>> LayerWriter::open(std::vector<LayerOutput> outputs,
                                                       unsigned threads) {
    if (outputs.empty()) {
        return fail("pack a layer failed: no output to write it to");
    }
    auto impl = std::make_unique<Impl>();
    for (auto& o : outputs) {
        auto out = std::make_unique<Impl::Output>();
        out->fd = o.fd;
        out->what = std::move(o.what);
        Impl::Output* self = out.get();
        TRY_ASSIGN(out->compressor,
                   make_compressor(o.compression, threads,
                                   [self](std::string_view data) { return self->emit(data); }));
        impl->outputs.push_back(std::move(out));
    }
    return std::unique_ptr<LayerWriter>(new LayerWriter(std::move(impl)));
}

Result<std::unique_ptr<LayerWriter>> LayerWriter::open(int out_fd, std::filesystem::path what,
                                                       PackOptions options) {
    std::vector<LayerOutput> outputs;
    outputs.push_back({out_fd, std::move(what), options.compression});
    return open(std::move(outputs), options.threads);
}

Result<void> LayerWriter::add_directory(std::string_view path, mode_t mode) {
    return m_impl->entry({path, TarType::directory, mode, 0, {}});
}

Result<void> LayerWriter::add_symlink(std::string_view path, std::string_view target) {
    return m_impl->entry({path, TarType::symlink, 0777, 0, target});
}

Result<void> LayerWriter::add_hardlink(std::string_view path, std::string_view target,
                                       mode_t mode) {
    return m_impl->entry({path, TarType::hardlink, mode, 0, target});
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

Result<std::vector<PackedLayer>> LayerWriter::finish() {
    TRY(m_impl->put(tar_end()));
    const auto diff_id = "sha256:" + m_impl->tar_hash.finish_hex();
    std::vector<PackedLayer> packed;
    for (auto& out : m_impl->outputs) {
        TRY(out->compressor->finish());
        packed.push_back({"sha256:" + out->blob_hash.finish_hex(), diff_id, out->blob_size});
    }
    return packed;
}

} // namespace nixery
