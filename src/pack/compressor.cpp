#include "pack/compressor.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <libdeflate.h>
#include <mutex>
#include <sched.h>
#include <string>
#include <thread>
#include <vector>
#include <zlib.h>
#include <zstd.h>

namespace nixery {

namespace {

// gzip: libdeflate's level 5 compresses about as well as zlib's -6 (the
// yardstick; 0.6 % smaller on the binaries of tests/bench/pack.sh) in less
// than half the time. Blocks of 1 MiB lose well under 0.1 % to the context
// a block cannot see of the one before it.
constexpr int k_gzip_level = 5;
constexpr std::size_t k_block = 1 << 20;
// zstd: level 3 (the zstd tool's default) with fixed 2 MiB jobs, so the
// output does not depend on how many workers share them (and two workers
// stay under 40 MiB).
constexpr int k_zstd_level = 3;
constexpr int k_zstd_job = 2 << 20;
constexpr unsigned k_max_threads = 8;

// mtime 0, no name, XFL 0, OS 3 (Unix): nothing but the data decides the bytes.
constexpr unsigned char k_gzip_header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
// An empty stored block's LEN and NLEN, after its three header bits.
constexpr unsigned char k_stored_empty[4] = {0x00, 0x00, 0xff, 0xff};

std::string_view as_chars(const unsigned char* data, std::size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

struct Block {
    std::vector<unsigned char> in;
    std::vector<unsigned char> out;
    std::uint32_t crc = 0;
    bool last = false;
    bool done = false;
    std::string error;
};

// A worker's tools: a libdeflate compressor and a zlib inflater that finds
// where the last deflate block of a compressed block starts.
struct DeflateTools {
    libdeflate_compressor* compressor = nullptr;
    z_stream inflater{};
    bool inflater_ready = false;
    std::vector<unsigned char> scratch = std::vector<unsigned char>(1 << 16);

    DeflateTools() {
        compressor = libdeflate_alloc_compressor(k_gzip_level);
        inflater_ready = inflateInit2(&inflater, -15) == Z_OK;
    }
    ~DeflateTools() {
        if (compressor != nullptr) {
            libdeflate_free_compressor(compressor);
        }
        if (inflater_ready) {
            inflateEnd(&inflater);
        }
    }
    DeflateTools(const DeflateTools&) = delete;
    DeflateTools& operator=(const DeflateTools&) = delete;

    // Clears the final bit of the last deflate block in `out` and appends an
    // empty stored block, so another deflate stream can follow on a byte
    // boundary. zlib's inflate stops at each block boundary with Z_BLOCK and
    // says how many bits of the last byte it has not used (zlib.h, inflate;
    // zlib's examples/gzjoin.c does the same).
    std::string unfinalize(std::vector<unsigned char>& out) {
        inflateReset(&inflater);
        inflater.next_in = out.data();
        inflater.avail_in = static_cast<uInt>(out.size());
        std::uint64_t last_header = 0;
        std::uint64_t end = 0;
        for (;;) {
            inflater.next_out = scratch.data();
            inflater.avail_out = static_cast<uInt>(scratch.size());
            const int rc = inflate(&inflater, Z_BLOCK);
            if (rc == Z_STREAM_END) {
                break;
            }
            if (rc != Z_OK) {
                return "deflate block check failed: " +
                       std::string(inflater.msg != nullptr ? inflater.msg : "inflate error");
            }
            if ((inflater.data_type & 128) != 0) {
                const auto bit = (out.size() - inflater.avail_in) * 8 -
                                 static_cast<std::uint64_t>(inflater.data_type & 7);
                if ((inflater.data_type & 64) == 0) {
                    last_header = bit; // a block starts here
                } else {
                    end = bit; // the final block ended here
                }
            }
        }
        const auto mask = static_cast<unsigned char>(1u << (last_header % 8));
        if (end == 0 || (out[last_header / 8] & mask) == 0 || (end + 7) / 8 != out.size()) {
            return "deflate block check failed: no final block where expected";
        }
        out[last_header / 8] &= static_cast<unsigned char>(~mask);
        const auto unused = out.size() * 8 - end;
        // The stored block's header (three zero bits) fits in the padding of
        // the last byte, or needs a byte of its own.
        if (unused < 3) {
            out.push_back(0);
        }
        out.insert(out.end(), std::begin(k_stored_empty), std::end(k_stored_empty));
        return {};
    }

    void compress(Block& b) {
        libdeflate_compressor* c = compressor;
        b.out.resize(libdeflate_deflate_compress_bound(c, b.in.size()));
        const auto n =
            libdeflate_deflate_compress(c, b.in.data(), b.in.size(), b.out.data(), b.out.size());
        if (n == 0) {
            b.error = "deflate failed: output larger than its bound";
            return;
        }
        b.out.resize(n);
        b.crc = static_cast<std::uint32_t>(libdeflate_crc32(0, b.in.data(), b.in.size()));
        if (!b.last) {
            b.error = unfinalize(b.out);
        }
    }
};

class GzipCompressor final : public Compressor {
public:
    GzipCompressor(unsigned threads, CompressedSink sink)
        : m_sink(std::move(sink)), m_max_pending(2 * threads) {
        for (unsigned i = 0; i < threads; ++i) {
            m_workers.emplace_back([this] { work(); });
        }
    }

    ~GzipCompressor() override {
        {
            std::lock_guard lock(m_mutex);
            m_stop = true;
        }
        m_work_ready.notify_all();
        for (auto& t : m_workers) {
            t.join();
        }
    }

    Result<void> write(std::span<const unsigned char> data) override {
        while (!data.empty()) {
            if (!m_current) {
                m_current = take_block();
            }
            const auto n = std::min(data.size(), k_block - m_current->in.size());
            m_current->in.insert(m_current->in.end(), data.begin(),
                                 data.begin() + static_cast<std::ptrdiff_t>(n));
            data = data.subspan(n);
            if (m_current->in.size() == k_block) {
                TRY(submit(false));
            }
        }
        return {};
    }

    Result<void> finish() override {
        if (!m_current) {
            m_current = take_block();
        }
        TRY(submit(true));
        while (!m_pending.empty()) {
            TRY(drain_one());
        }
        unsigned char trailer[8];
        for (int i = 0; i < 4; ++i) {
            trailer[i] = static_cast<unsigned char>(m_crc >> (8 * i));
            trailer[4 + i] = static_cast<unsigned char>(m_total >> (8 * i));
        }
        return m_sink(as_chars(trailer, sizeof trailer));
    }

private:
    std::unique_ptr<Block> take_block() {
        std::unique_ptr<Block> b;
        if (!m_spare.empty()) {
            b = std::move(m_spare.back());
            m_spare.pop_back();
        } else {
            b = std::make_unique<Block>();
            b->in.reserve(k_block);
        }
        b->in.clear();
        b->out.clear();
        b->crc = 0;
        b->last = false;
        b->done = false;
        b->error.clear();
        return b;
    }

    Result<void> submit(bool last) {
        m_current->last = last;
        Block* raw = m_current.get();
        {
            std::lock_guard lock(m_mutex);
            m_pending.push_back(std::move(m_current));
            m_queue.push_back(raw);
        }
        m_work_ready.notify_one();
        while (m_pending.size() > m_max_pending) {
            TRY(drain_one());
        }
        return {};
    }

    // Waits for the oldest block and hands its bytes to the sink.
    Result<void> drain_one() {
        std::unique_ptr<Block> b;
        {
            std::unique_lock lock(m_mutex);
            m_block_done.wait(lock, [&] { return m_pending.front()->done; });
            b = std::move(m_pending.front());
            m_pending.pop_front();
        }
        if (!b->error.empty()) {
            return fail("gzip layer failed: " + b->error);
        }
        if (!m_header_written) {
            TRY(m_sink(as_chars(k_gzip_header, sizeof k_gzip_header)));
            m_header_written = true;
        }
        TRY(m_sink(as_chars(b->out.data(), b->out.size())));
        m_crc = static_cast<std::uint32_t>(
            crc32_combine(m_crc, b->crc, static_cast<z_off_t>(b->in.size())));
        m_total += b->in.size();
        m_spare.push_back(std::move(b));
        return {};
    }

    void work() {
        DeflateTools tools;
        for (;;) {
            Block* b = nullptr;
            {
                std::unique_lock lock(m_mutex);
                m_work_ready.wait(lock, [&] { return m_stop || !m_queue.empty(); });
                if (m_stop) {
                    return;
                }
                b = m_queue.front();
                m_queue.pop_front();
            }
            if (tools.compressor == nullptr || !tools.inflater_ready) {
                b->error = "cannot allocate a deflate compressor";
            } else {
                tools.compress(*b);
            }
            {
                std::lock_guard lock(m_mutex);
                b->done = true;
            }
            m_block_done.notify_all();
        }
    }

    CompressedSink m_sink;
    std::size_t m_max_pending;
    std::unique_ptr<Block> m_current;
    std::vector<std::unique_ptr<Block>> m_spare;
    std::uint32_t m_crc = 0;
    std::uint64_t m_total = 0;
    bool m_header_written = false;

    std::mutex m_mutex;
    std::condition_variable m_work_ready;
    std::condition_variable m_block_done;
    std::deque<std::unique_ptr<Block>> m_pending; // submitted, in stream order
    std::deque<Block*> m_queue;                   // not yet taken by a worker
    bool m_stop = false;
    std::vector<std::thread> m_workers;
};

class ZstdCompressor final : public Compressor {
public:
    explicit ZstdCompressor(CompressedSink sink)
        : m_sink(std::move(sink)), m_out(ZSTD_CStreamOutSize()) {}
    ~ZstdCompressor() override { ZSTD_freeCCtx(m_ctx); }
    ZstdCompressor(const ZstdCompressor&) = delete;
    ZstdCompressor& operator=(const ZstdCompressor&) = delete;

    Result<void> init(unsigned threads) {
        m_ctx = ZSTD_createCCtx();
        if (m_ctx == nullptr) {
            return fail("zstd layer failed: cannot allocate a context");
        }
        // Always at least one worker: zstd's single-threaded mode (0)
        // writes other bytes than its multi-threaded one.
        for (const auto& [param, value] :
             {std::pair{ZSTD_c_compressionLevel, k_zstd_level}, std::pair{ZSTD_c_checksumFlag, 1},
              std::pair{ZSTD_c_nbWorkers, static_cast<int>(threads)},
              std::pair{ZSTD_c_jobSize, k_zstd_job}}) {
            if (const auto rc = ZSTD_CCtx_setParameter(m_ctx, param, value); ZSTD_isError(rc)) {
                return fail("zstd layer failed: " + std::string(ZSTD_getErrorName(rc)));
            }
        }
        return {};
    }

    Result<void> write(std::span<const unsigned char> data) override {
        return compress(data, ZSTD_e_continue);
    }

    Result<void> finish() override {
        // A first call that ends the frame would take the single-threaded path.
        TRY(compress({}, ZSTD_e_continue));
        return compress({}, ZSTD_e_end);
    }

private:
    Result<void> compress(std::span<const unsigned char> data, ZSTD_EndDirective mode) {
        ZSTD_inBuffer in{data.data(), data.size(), 0};
        for (;;) {
            ZSTD_outBuffer out{m_out.data(), m_out.size(), 0};
            const auto rc = ZSTD_compressStream2(m_ctx, &out, &in, mode);
            if (ZSTD_isError(rc)) {
                return fail("zstd layer failed: " + std::string(ZSTD_getErrorName(rc)));
            }
            if (out.pos > 0) {
                TRY(m_sink(as_chars(m_out.data(), out.pos)));
            }
            const bool done = mode == ZSTD_e_end ? rc == 0 : in.pos == in.size;
            if (done) {
                return {};
            }
        }
    }

    CompressedSink m_sink;
    ZSTD_CCtx* m_ctx = nullptr;
    std::vector<unsigned char> m_out;
};

} // namespace

unsigned default_pack_threads() {
    cpu_set_t set;
    CPU_ZERO(&set);
    unsigned n = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        n = static_cast<unsigned>(CPU_COUNT(&set));
    }
    if (n == 0) {
        n = std::thread::hardware_concurrency();
    }
    return std::clamp(n, 1u, k_max_threads);
}

Result<std::unique_ptr<Compressor>> make_compressor(LayerCompression compression, unsigned threads,
                                                    CompressedSink sink) {
    if (threads == 0) {
        threads = default_pack_threads();
    }
    if (compression == LayerCompression::zstd) {
        auto z = std::make_unique<ZstdCompressor>(std::move(sink));
        TRY(z->init(threads));
        return std::unique_ptr<Compressor>(std::move(z));
    }
    return std::unique_ptr<Compressor>(std::make_unique<GzipCompressor>(threads, std::move(sink)));
}

} // namespace nixery
