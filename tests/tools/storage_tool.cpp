// A test program: drives one storage backend, configured by the same
// environment variables as nixery (NIXERY_STORAGE_BACKEND, STORAGE_PATH,
// GCS_*, S3_*, …), so tests/integration/test_storage_contract.py can hold
// every backend to the same contract. Not installed.
//
//   storage-tool check                           (what gc and nixery build check)
//   storage-tool check-serving                   (and what nixery serve checks too)
//   storage-tool put KEY FILE CONTENT-TYPE       (the file's bytes, from memory)
//   storage-tool persist KEY FILE CONTENT-TYPE   (through a staging file, copied
//                                                 in chunks; prints
//                                                 {"peak_rss_kib":…} so a test
//                                                 can see the backend streamed)
//   storage-tool fetch KEY                       (stdout; exit 3 when absent)
//   storage-tool read KEY FILE                   (streamed into FILE; prints
//                                                 {"peak_rss_kib":…}; exit 3
//                                                 when absent)
//   storage-tool exists KEY                      (prints true or false)
//   storage-tool stat KEY                        (prints {"content_type":…,"size":…,"modified":…};
//                                                 exit 3 when absent)
//   storage-tool locate KEY                      (prints {"kind":…,"location":…})
//   storage-tool remove KEY
//   storage-tool list PREFIX                     (one JSON object a line)
//   storage-tool staging-dir
//
// Errors go to stderr as the backend words them; exit status 1.

#include "config.hpp"
#include "storage/backend.hpp"
#include "util/files.hpp"
#include "util/json.hpp"

#include <cerrno>
#include <cstdio>
#include <fcntl.h>
#include <string>
#include <unistd.h>
#include <vector>

using namespace nixery;

namespace {

int failed(const Error& e) {
    std::fprintf(stderr, "%s\n", e.message.c_str());
    return 1;
}

// Copies `file` into the staging file a chunk at a time: the tool itself
// never holds the file, so its peak memory is the backend's doing.
Result<void> copy_into(const std::string& file, StagingFile& staged) {
    const UniqueFd in(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in) {
        return fail("open \"" + file + "\" failed: " + errno_text(errno));
    }
    return read_chunks(in.get(), file, [&](std::string_view piece) {
        return write_all(staged.fd(), piece, staged.path());
    });
}

// The peak resident set of this program: VmHWM of /proc/self/status, not
// getrusage()'s ru_maxrss, which Linux carries over exec() from the process
// that forked us (a test driver holding its own data), or -1.
long peak_rss_kib() {
    std::FILE* status = std::fopen("/proc/self/status", "r");
    if (status == nullptr) {
        return -1;
    }
    char line[256];
    long kib = -1;
    while (std::fgets(line, sizeof line, status) != nullptr) {
        if (std::sscanf(line, "VmHWM: %ld kB", &kib) == 1) {
            break;
        }
    }
    std::fclose(status);
    return kib;
}

int run(StorageBackend& storage, const std::vector<std::string>& args) {
    const auto& op = args[0];
    const auto need = [&](std::size_t n) { return args.size() == n + 1; };
    if ((op == "check" || op == "check-serving") && need(0)) {
        if (auto r = storage.check(); !r) {
            return failed(r.error());
        }
        if (op == "check-serving") {
            if (auto r = storage.check_client_access(); !r) {
                return failed(r.error());
            }
        }
        std::printf("%s\n", storage.describe().c_str());
        return 0;
    }
    if (op == "staging-dir" && need(0)) {
        std::printf("%s\n", storage.staging_dir().c_str());
        return 0;
    }
    if (op == "put" && need(3)) {
        auto data = read_file(args[2]);
        if (!data) {
            return failed(data.error());
        }
        auto r = storage.put(args[1], *data, args[3]);
        return r ? 0 : failed(r.error());
    }
    if (op == "persist" && need(3)) {
        auto staged = StagingFile::create(storage.staging_dir());
        if (!staged) {
            return failed(staged.error());
        }
        if (auto w = copy_into(args[2], *staged); !w) {
            return failed(w.error());
        }
        auto r = storage.persist(std::move(*staged), args[1], args[3]);
        if (!r) {
            return failed(r.error());
        }
        std::printf("{\"peak_rss_kib\":%ld}\n", peak_rss_kib());
        return 0;
    }
    if (op == "fetch" && need(1)) {
        auto r = storage.fetch(args[1]);
        if (!r) {
            return failed(r.error());
        }
        if (!*r) {
            return 3;
        }
        return write_all(STDOUT_FILENO, **r, "stdout") ? 0 : 1;
    }
    if (op == "read" && need(2)) {
        UniqueFd out(::open(args[2].c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        if (!out) {
            return failed(Error{"open \"" + args[2] + "\" failed: " + errno_text(errno)});
        }
        auto r = storage.read(
            args[1], [&](std::string_view piece) { return write_all(out.get(), piece, args[2]); });
        if (!r) {
            return failed(r.error());
        }
        if (!*r) {
            return 3;
        }
        std::printf("{\"peak_rss_kib\":%ld}\n", peak_rss_kib());
        return 0;
    }
    if (op == "exists" && need(1)) {
        auto r = storage.exists(args[1]);
        if (!r) {
            return failed(r.error());
        }
        std::printf("%s\n", *r ? "true" : "false");
        return 0;
    }
    if (op == "stat" && need(1)) {
        auto r = storage.stat(args[1]);
        if (!r) {
            return failed(r.error());
        }
        if (!*r) {
            return 3;
        }
        std::printf("%s\n", json_object({{"content_type", (*r)->content_type}},
                                        {{"size", static_cast<std::int64_t>((*r)->size)},
                                         {"modified", (*r)->modified}})
                                .c_str());
        return 0;
    }
    if (op == "locate" && need(1)) {
        auto r = storage.locate(args[1]);
        if (!r) {
            return failed(r.error());
        }
        const char* kind = r->kind == BlobLocation::Kind::redirect ? "redirect" : "accel_redirect";
        std::printf("%s\n", json_object({{"kind", kind}, {"location", r->location}}).c_str());
        return 0;
    }
    if (op == "remove" && need(1)) {
        auto r = storage.remove(args[1]);
        return r ? 0 : failed(r.error());
    }
    if (op == "list" && need(1)) {
        auto r = storage.list(args[1]);
        if (!r) {
            return failed(r.error());
        }
        for (const auto& o : *r) {
            std::printf("%s\n",
                        json_object({{"key", o.key}}, {{"size", static_cast<std::int64_t>(o.size)},
                                                       {"modified", o.modified}})
                            .c_str());
        }
        return 0;
    }
    std::fprintf(stderr, "storage-tool: bad arguments (see tests/tools/storage_tool.cpp)\n");
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: storage-tool OPERATION [ARGS]\n");
        return 2;
    }
    auto config = load_config(current_environment(), ConfigUse::tool);
    if (!config) {
        return failed(config.error());
    }
    if (config->state_dir.empty() && config->storage != StorageKind::filesystem) {
        std::fprintf(stderr, "storage-tool: set NIXERY_STATE_DIR for the staging directory\n");
        return 2;
    }
    auto storage = make_storage(*config);
    if (!storage) {
        return failed(storage.error());
    }
    return run(**storage, std::vector<std::string>(argv + 1, argv + argc));
}
