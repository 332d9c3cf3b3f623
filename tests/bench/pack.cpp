// Benchmark: packs the store paths given on the command line into a layer
// and prints the throughput and the peak memory, which must not grow with
// the size of the paths (streaming, fixed buffers).
//
//   build/bench-pack STORE_DIR PATH…
#include "pack/layer_writer.hpp"
#include "pack/store_paths.hpp"
#include "util/files.hpp"

#include <chrono>
#include <cstdio>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: bench-pack STORE_DIR PATH...\n");
        return 2;
    }
    const std::vector<std::string> paths(argv + 2, argv + argc);
    const auto out = std::filesystem::temp_directory_path() / "nixery-bench-layer.tar.gz";
    nixery::UniqueFd fd(::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    const auto started = std::chrono::steady_clock::now();
    auto writer = nixery::LayerWriter::open(fd.get(), out);
    if (!writer) {
        std::fprintf(stderr, "%s\n", writer.error().message.c_str());
        return 1;
    }
    if (auto r = nixery::add_store_paths(**writer, paths, argv[1]); !r) {
        std::fprintf(stderr, "%s\n", r.error().message.c_str());
        return 1;
    }
    auto packed = (*writer)->finish();
    if (!packed) {
        std::fprintf(stderr, "%s\n", packed.error().message.c_str());
        return 1;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::uint64_t input = 0;
    for (const auto& p : paths) {
        for (const auto& e : std::filesystem::recursive_directory_iterator(p)) {
            if (e.is_regular_file()) {
                input += e.file_size();
            }
        }
    }
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    std::printf("input        %10.1f MiB\n", input / 1048576.0);
    std::printf("layer        %10.1f MiB  %s\n", packed->size / 1048576.0, packed->digest.c_str());
    std::printf("time         %10.2f s\n", seconds);
    std::printf("throughput   %10.1f MiB/s (input)\n", input / 1048576.0 / seconds);
    std::printf("peak memory  %10.1f MiB (max RSS)\n", usage.ru_maxrss / 1024.0);
    std::filesystem::remove(out);
    return 0;
}
