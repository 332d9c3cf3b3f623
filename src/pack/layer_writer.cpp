#include "pack/layer_writer.hpp"

#include "util/files.hpp"
#include "util/sha256.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <cerrno>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>
#include <zlib.h>

namespace nixery {

namespace {

constexpr std::size_t k_chunk = 1 << 20;
constexpr time_t k_mtime = 1; // what Nix sets in the store
constexpr int k_gzip_level = 6;

struct EntryDeleter {
    void operator()(archive_entry* e) const { archive_entry_free(e); }
};
using Entry = std::unique_ptr<archive_entry, EntryDeleter>;

} // namespace

struct LayerWriter::Impl {
    int out_fd = -1;
    std::filesystem::path what;
    archive* ar = nullptr;
    z_stream z{};
    bool z_ready = false;
    Sha256 tar_hash;
    Sha256 blob_hash;
    std::uint64_t blob_size = 0;
    std::vector<unsigned char> zbuf = std::vector<unsigned char>(k_chunk);
    std::vector<char> io = std::vector<char>(k_chunk);
    std::string error; // set by the write callback, which must not throw

    ~Impl() {
        if (ar != nullptr) {
            archive_write_free(ar);
        }
        if (z_ready) {
            deflateEnd(&z);
        }
    }

    bool emit(int flush) {
        do {
            z.next_out = zbuf.data();
            z.avail_out = static_cast<uInt>(zbuf.size());
            const int rc = deflate(&z, flush);
            if (rc == Z_STREAM_ERROR) {
                error = "gzip \"" + what.string() + "\" failed: deflate stream error";
                return false;
            }
            const auto produced = zbuf.size() - z.avail_out;
            if (produced > 0) {
                blob_hash.update(zbuf.data(), produced);
                blob_size += produced;
                auto written = write_all(
                    out_fd, std::string_view(reinterpret_cast<char*>(zbuf.data()), produced), what);
                if (!written) {
                    error = written.error().message;
                    return false;
                }
            }
        } while (z.avail_out == 0);
        return true;
    }

    static la_ssize_t on_write(archive*, void* self_ptr, const void* data, size_t size) {
        auto* self = static_cast<Impl*>(self_ptr);
        self->tar_hash.update(data, size);
        self->z.next_in = static_cast<Bytef*>(const_cast<void*>(data));
        self->z.avail_in = static_cast<uInt>(size);
        if (!self->emit(Z_NO_FLUSH)) {
            archive_set_error(self->ar, EIO, "%s", self->error.c_str());
            return -1;
        }
        return static_cast<la_ssize_t>(size);
    }

    Result<void> check(int rc, std::string_view op, std::string_view path) {
        if (rc == ARCHIVE_OK) {
            return {};
        }
        std::string cause = !error.empty()             ? error
                            : archive_error_string(ar) ? archive_error_string(ar)
                                                       : "unknown error";
        return fail(std::string(op) + " \"" + std::string(path) + "\" into layer failed: " + cause);
    }

    Entry make_entry(std::string_view path, mode_t type, mode_t perm, std::uint64_t size) {
        Entry e(archive_entry_new());
        archive_entry_copy_pathname(e.get(), std::string(path).c_str());
        archive_entry_set_filetype(e.get(), type);
        archive_entry_set_perm(e.get(), perm & 07777);
        archive_entry_set_size(e.get(), static_cast<la_int64_t>(size));
        archive_entry_set_mtime(e.get(), k_mtime, 0);
        archive_entry_set_uid(e.get(), 0);
        archive_entry_set_gid(e.get(), 0);
        return e;
    }

    Result<void> write_header(const Entry& e, std::string_view path) {
        return check(archive_write_header(ar, e.get()), "add", path);
    }

    Result<void> write_data(const void* data, std::size_t size, std::string_view path) {
        const auto n = archive_write_data(ar, data, size);
        if (n < 0 || static_cast<std::size_t>(n) != size) {
            return check(ARCHIVE_FATAL, "write", path);
        }
        return {};
    }
};

LayerWriter::LayerWriter(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
LayerWriter::~LayerWriter() = default;

Result<std::unique_ptr<LayerWriter>> LayerWriter::open(int out_fd, std::filesystem::path what) {
    auto impl = std::make_unique<Impl>();
    impl->out_fd = out_fd;
    impl->what = std::move(what);
    // windowBits 15 + 16: a gzip wrapper whose header zlib writes with mtime 0,
    // no name, and OS "unix", so it depends on nothing but the data.
    if (deflateInit2(&impl->z, k_gzip_level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        return fail("gzip \"" + impl->what.string() + "\" failed: deflateInit2");
    }
    impl->z_ready = true;
    impl->ar = archive_write_new();
    if (impl->ar == nullptr) {
        return fail("archive_write_new failed");
    }
    if (archive_write_set_format_pax_restricted(impl->ar) != ARCHIVE_OK ||
        archive_write_add_filter_none(impl->ar) != ARCHIVE_OK) {
        return fail("configure tar writer failed: " + std::string(archive_error_string(impl->ar)));
    }
    if (archive_write_open2(impl->ar, impl.get(), nullptr, &Impl::on_write, nullptr, nullptr) !=
        ARCHIVE_OK) {
        return fail("open tar writer failed: " + std::string(archive_error_string(impl->ar)));
    }
    return std::unique_ptr<LayerWriter>(new LayerWriter(std::move(impl)));
}

Result<void> LayerWriter::add_directory(std::string_view path, mode_t mode) {
    auto e = m_impl->make_entry(path, AE_IFDIR, mode, 0);
    return m_impl->write_header(e, path);
}

Result<void> LayerWriter::add_symlink(std::string_view path, std::string_view target) {
    auto e = m_impl->make_entry(path, AE_IFLNK, 0777, 0);
    archive_entry_copy_symlink(e.get(), std::string(target).c_str());
    return m_impl->write_header(e, path);
}

Result<void> LayerWriter::add_hardlink(std::string_view path, std::string_view target) {
    auto e = m_impl->make_entry(path, AE_IFREG, 0444, 0);
    archive_entry_copy_hardlink(e.get(), std::string(target).c_str());
    return m_impl->write_header(e, path);
}

Result<void> LayerWriter::add_file(std::string_view path, mode_t mode, int fd, std::uint64_t size,
                                   const std::filesystem::path& source) {
    auto e = m_impl->make_entry(path, AE_IFREG, mode, size);
    TRY(m_impl->write_header(e, path));
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
        TRY(m_impl->write_data(m_impl->io.data(), static_cast<std::size_t>(n), path));
        left -= static_cast<std::uint64_t>(n);
    }
    return {};
}

Result<void> LayerWriter::add_file_data(std::string_view path, mode_t mode, std::string_view data) {
    auto e = m_impl->make_entry(path, AE_IFREG, mode, data.size());
    TRY(m_impl->write_header(e, path));
    if (!data.empty()) {
        TRY(m_impl->write_data(data.data(), data.size(), path));
    }
    return {};
}

Result<PackedLayer> LayerWriter::finish() {
    TRY(m_impl->check(archive_write_close(m_impl->ar), "finish", m_impl->what.string()));
    m_impl->z.next_in = nullptr;
    m_impl->z.avail_in = 0;
    if (!m_impl->emit(Z_FINISH)) {
        return fail(m_impl->error);
    }
    PackedLayer out;
    out.diff_id = "sha256:" + m_impl->tar_hash.finish_hex();
    out.digest = "sha256:" + m_impl->blob_hash.finish_hex();
    out.size = m_impl->blob_size;
    return out;
}

} // namespace nixery
