// Benchmark: packs the store paths given on the command line into a layer
// and prints the throughput and the peak memory, which must not grow with
// the size of the paths (streaming, fixed buffers). With --both, one walk
// packs the gzip and the zstd blob together, as the registry does when it
// serves zstd layers (the figures are of both; the digest is the zstd one).
//
//   build/bench-pack [--zstd | --both] [--threads N] [--out FILE] STORE_DIR PATH…
//
// One line of "key value" pairs, for tests/bench/pack.sh to tabulate.
#include "pack/layer_writer.hpp"
#include "pack/store_paths.hpp"
#include "util/files.hpp"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

int main(int argc, char** argv) {
    nixery::PackOptions options;
    std::filesystem::path out = std::filesystem::temp_directory_path() / "nixery-bench-layer";
    bool keep = false;
    bool both = false;
    int i = 1;
    for (; i < argc && std::strncmp(argv[i], "--", 2) == 0; ++i) {
        if (std::strcmp(argv[i], "--zstd") == 0) {
            options.compression = nixery::LayerCompression::zstd;
        } else if (std::strcmp(argv[i], "--both") == 0) {
            both = true;
        } else if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            options.threads = static_cast<unsigned>(std::atoi(argv[++i]));
        } else if (std::strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out = argv[++i];
            keep = true;
        } else {
            break;
        }
    }
    if (argc - i < 2) {
        std::fprintf(stderr,
                     "usage: bench-pack [--zstd | --both] [--threads N] [--out FILE] STORE_DIR "
                     "PATH...\n");
        return 2;
    }
    const std::string store = argv[i];
    const std::vector<std::string> paths(argv + i + 1, argv + argc);
    const auto gzip_out = out.string() + ".gz";
    nixery::UniqueFd fd(::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    nixery::UniqueFd gzip_fd;
    std::vector<nixery::LayerOutput> outputs;
    if (both) {
        gzip_fd = nixery::UniqueFd(
            ::open(gzip_out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        outputs.push_back({gzip_fd.get(), gzip_out, nixery::LayerCompression::gzip});
        options.compression = nixery::LayerCompression::zstd;
    }
    outputs.push_back({fd.get(), out, options.compression});
    const auto started = std::chrono::steady_clock::now();
    auto writer = nixery::LayerWriter::open(std::move(outputs), options.threads);
    if (!writer) {
        std::fprintf(stderr, "%s\n", writer.error().message.c_str());
        return 1;
    }
    if (auto r = nixery::add_store_paths(**writer, paths, store); !r) {
        std::fprintf(stderr, "%s\n", r.error().message.c_str());
        return 1;
    }
    auto packed = (*writer)->finish();
    if (!packed) {
        std::fprintf(stderr, "%s\n", packed.error().message.c_str());
        return 1;
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    const auto cpu = [](const timeval& t) {
        return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6;
    };
    std::printf("seconds %.3f cpu %.3f bytes %llu rss_kib %ld digest %s\n", seconds,
                cpu(usage.ru_utime) + cpu(usage.ru_stime),
                static_cast<unsigned long long>(packed->back().size), usage.ru_maxrss,
                packed->back().digest.c_str());
    if (both) {
        std::filesystem::remove(gzip_out);
    }
    if (!keep) {
        std::filesystem::remove(out);
    }
    return 0;
}
