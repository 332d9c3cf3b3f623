// Compressing a layer's tar stream into a blob, on several threads, with
// bytes that depend on the input alone: never on the number of threads, the
// machine or the locale, so instances anywhere pack byte-identical layers.
//
// gzip: the input is cut into blocks of fixed size, each deflated on its own
// by libdeflate (about twice as fast as zlib at the same level) on a pool of
// threads, and the blocks are joined into ONE gzip member, as pigz does: a
// block's last deflate block loses its "final" bit and is followed by an
// empty stored block, so the next block starts on a byte boundary; the CRC
// of the whole is combined from the blocks' CRCs. See RFC 1951 §3.2.3-4 and
// RFC 1952 §2.3.
//
//   header | block 1 (final bit cleared) 00 00 ff ff | block 2 … | last block | CRC ISIZE
//
// zstd: libzstd's own multi-threaded mode, whose output is the same for any
// number of workers ≥ 1 (jobs and their overlap are fixed sizes).
//
// Memory is bounded by the block size times the blocks in flight (twice the
// threads), whatever the size of the input. Nothing here does file I/O: the
// compressed bytes go to a sink in input order, from the caller's thread.
#pragma once

#include "core/manifest.hpp"
#include "util/result.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>

namespace nixery {

// Receives compressed bytes, in order; an error stops the compression.
using CompressedSink = std::function<Result<void>(std::string_view)>;

// The threads a layer is compressed on when the caller does not say:
// the CPUs this process may use, at most 8 (memory grows with threads).
unsigned default_pack_threads();

class Compressor {
public:
    virtual ~Compressor() = default;
    // Compresses `data`; the sink may or may not be called before this returns.
    virtual Result<void> write(std::span<const unsigned char> data) = 0;
    // Ends the stream: every compressed byte has reached the sink on success.
    virtual Result<void> finish() = 0;
};

// `threads` 0 means default_pack_threads().
Result<std::unique_ptr<Compressor>> make_compressor(LayerCompression compression, unsigned threads,
                                                    CompressedSink sink);

} // namespace nixery
