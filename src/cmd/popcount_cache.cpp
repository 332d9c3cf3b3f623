#include "cmd/popcount_runs.hpp"

#include "cmd/progress.hpp"
#include "cmd/stop_signals.hpp"
#include "core/popcount.hpp"
#include "http/client.hpp"
#include "http/fetch.hpp"
#include "http/retry.hpp"
#include "util/decompress.hpp"
#include "util/files.hpp"
#include "util/log.hpp"
#include "util/text.hpp"

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>
#include <unistd.h>

namespace nixery {

namespace {

// A run reads some 100k narinfo files unattended, and one failure stops it:
// a cache that is briefly overloaded (429, 5xx) or away gets minutes, as Nix
// gives it, not the 30 s of a call a client waits for.
const RetryPolicy k_narinfo_retries{.attempts = 8,
                                    .first_delay = std::chrono::seconds(1),
                                    .max_delay = std::chrono::seconds(60),
                                    .budget = std::chrono::milliseconds(0)};
// A narinfo file is a few hundred bytes; a few thousand with many references.
constexpr std::size_t k_narinfo_max = 4 << 20;

// A narinfo file as its Content-Encoding sent it (Nix writes them
// compressed to a bucket with `narinfo-compression`, and decodes them so
// when it reads them), decoded.
Result<std::string> narinfo_text(const HttpResponse& response) {
    const auto encoding = ascii_lowercase(response.header("content-encoding"));
    if (encoding.empty() || encoding == "identity") {
        return response.body;
    }
    if (encoding != "xz" && encoding != "gzip" && encoding != "x-gzip" && encoding != "bzip2" &&
        encoding != "zstd") {
        return fail("its Content-Encoding is " + encoding.substr(0, 40) +
                    ", which popcount cannot decode; a cache written with narinfo-compression=xz "
                    "(or zstd, gzip, bzip2) or none can be read");
    }
    std::string text;
    TRY(decompress_each(response.body, k_narinfo_max,
                        [&](std::string_view piece) { text.append(piece); }));
    return text;
}

// Reads the journal of an earlier run into `graph`, cutting a torn last
// line off so appends start on a fresh line. Returns the paths it knows.
Result<std::vector<char>> load_journal(const std::string& file, StorePathGraph& graph,
                                       std::size_t& missing) {
    // Line by line: the journal of a whole channel is tens of MB.
    std::vector<char> known;
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        return known; // no journal yet
    }
    std::uint64_t valid = 0;
    std::uint64_t read = 0;
    std::string line;
    while (std::getline(in, line)) {
        if (in.eof()) {
            break; // no newline: torn by an interruption
        }
        read += line.size() + 1;
        line += '\n';
        const auto entry = parse_journal_line(line);
        if (!entry) {
            continue;
        }
        valid = read;
        const auto id = graph.intern(entry->base_name);
        std::vector<std::uint32_t> refs;
        if (entry->info) {
            for (const auto& r : entry->info->references) {
                refs.push_back(graph.intern(r));
            }
        } else {
            ++missing;
        }
        graph.set_references(id, std::move(refs));
        known.resize(graph.size(), 0);
        known[id] = 1;
    }
    in.close();
    std::error_code ec;
    const auto size = std::filesystem::file_size(file, ec);
    if (!ec && valid < size && ::truncate(file.c_str(), static_cast<off_t>(valid)) != 0) {
        return fail("truncate \"" + file + "\" failed: " + errno_text(errno));
    }
    return known;
}

// Ends the run at once after a SIGINT or SIGTERM: the fetches under way
// cannot be stopped (one may wait minutes on a cache that fails), and
// nothing is lost by not waiting for them: no Nix runs, the output is not
// begun, and what was read is in the journal (a line cut short is cut off
// by the next run), which the next run resumes from.
[[noreturn]] void end_stopped(Progress& progress, const CacheCount& opts) {
    progress.stop();
    std::fprintf(stderr,
                 "nixery popcount: stopped by %s; nothing written (what was read is kept in "
                 "\"%s\"; run the same command again to resume)\n",
                 stop_signal_name(), opts.journal.c_str());
    std::_Exit(stopped_status(1));
}

} // namespace

int count_from_cache(const CacheCount& opts) {
    Progress progress;
    stop_on_signals();
    progress.phase("fetching " + log::redact_url(opts.store_paths));
    auto fetching = std::async(std::launch::async, [&] {
        return fetch_url(opts.store_paths, std::chrono::seconds(600), std::size_t{1} << 30);
    });
    while (fetching.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
        if (stop_signal() != 0) {
            end_stopped(progress, opts);
        }
    }
    auto body = fetching.get();
    if (!body) {
        return popcount_failure(progress, body.error().message);
    }
    StorePathGraph graph;
    std::vector<std::uint32_t> packages;
    std::size_t invalid = 0;
    // The list as channels publish it (xz), or plain.
    auto read = decompress_lines(*body, std::size_t{1} << 30, [&](std::string_view line) {
        if (!line.empty() && line.back() == '\r') {
            line.remove_suffix(1); // a list saved with CRLF line ends
        }
        if (line.empty()) {
            return;
        }
        if (const auto base = store_base_name(line)) {
            packages.push_back(graph.intern(*base));
        } else {
            ++invalid;
        }
    });
    body->clear();
    body->shrink_to_fit();
    if (!read) {
        return popcount_failure(progress, "read \"" + log::redact_url(opts.store_paths) +
                                              "\" failed: " + read.error().message);
    }

    if (packages.empty()) {
        return popcount_failure(
            progress, "\"" + log::redact_url(opts.store_paths) + "\" lists no store paths (" +
                          std::to_string(invalid) +
                          " lines that are not one): is it a channel's store-paths file?");
    }
    std::size_t missing = 0;
    auto loaded = load_journal(opts.journal, graph, missing);
    if (!loaded) {
        return popcount_failure(progress, loaded.error().message);
    }
    // state[id]: 0 not seen, 1 queued, 2 read (now or by an earlier run).
    std::vector<char> state = std::move(*loaded);
    for (auto& s : state) {
        s = s ? 2 : 0;
    }
    const std::size_t resumed = static_cast<std::size_t>(std::count(state.begin(), state.end(), 2));
    std::deque<std::uint32_t> queue;
    const auto enqueue = [&](std::uint32_t id) {
        if (state.size() <= id) {
            state.resize(graph.size(), 0);
        }
        if (state[id] == 0) {
            state[id] = 1;
            queue.push_back(id);
        }
    };
    for (std::uint32_t id = 0; id < graph.size(); ++id) {
        enqueue(id); // the packages, and references earlier runs learnt
    }

    const int fd = ::open(opts.journal.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        return popcount_failure(progress,
                                "open \"" + opts.journal + "\" failed: " + errno_text(errno));
    }
    struct CloseFd {
        int fd;
        ~CloseFd() { ::close(fd); }
    } close_journal{fd};

    progress.phase("reading narinfo files from " + log::redact_url(opts.cache) + " (" +
                   std::to_string(resumed) + " from " + opts.journal + "):");
    HttpClient client;
    std::mutex mutex;
    std::condition_variable changed;
    std::size_t in_flight = 0;
    std::size_t fetched = 0;
    std::string error;
    const auto worker = [&] {
        std::unique_lock<std::mutex> lock(mutex);
        for (;;) {
            changed.wait(lock, [&] { return !error.empty() || !queue.empty() || in_flight == 0; });
            if (!error.empty() || queue.empty()) {
                return;
            }
            const auto id = queue.front();
            queue.pop_front();
            ++in_flight;
            const std::string base = graph.base_name(id);
            lock.unlock();

            const auto url = opts.cache + "/" + std::string(store_hash(base)) + ".narinfo";
            auto response = perform_with_retries(
                client,
                [&]() -> Result<HttpRequest> {
                    HttpRequest r;
                    r.url = url;
                    r.max_response = k_narinfo_max;
                    r.follow_redirects = true;
                    return r;
                },
                k_narinfo_retries);
            std::optional<NarInfo> info;
            std::string failure;
            if (!response) {
                failure =
                    "fetch \"" + log::redact_url(url) + "\" failed: " + response.error().message;
            } else if (response->status == 200) {
                auto text = narinfo_text(*response);
                auto parsed =
                    text ? parse_narinfo(*text) : Result<NarInfo>(unexpected(text.error()));
                if (parsed) {
                    info = std::move(*parsed);
                } else {
                    failure = "\"" + log::redact_url(url) + "\": " + parsed.error().message;
                }
            } else if (response->status != 404 && response->status != 403) {
                failure = "fetch \"" + log::redact_url(url) +
                          "\" failed: " + describe_status(*response, "");
            }

            lock.lock();
            --in_flight;
            if (!failure.empty()) {
                if (error.empty()) {
                    error = failure;
                }
                changed.notify_all();
                continue;
            }
            const auto line = journal_line(base, info);
            if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
                error = "write \"" + opts.journal + "\" failed: " + errno_text(errno);
                changed.notify_all();
                continue;
            }
            std::vector<std::uint32_t> refs;
            if (info) {
                for (const auto& r : info->references) {
                    refs.push_back(graph.intern(r));
                }
            } else {
                ++missing;
            }
            for (const auto r : refs) {
                enqueue(r);
            }
            graph.set_references(id, std::move(refs));
            state[id] = 2;
            ++fetched;
            progress.detail(std::to_string(fetched) + " read, " + std::to_string(queue.size()) +
                            " to go, " + std::to_string(missing) + " not in the cache,");
            changed.notify_all();
        }
    };
    std::vector<std::thread> threads;
    std::size_t finished = 0;
    for (int i = 0; i < opts.jobs; ++i) {
        threads.emplace_back([&] {
            worker();
            const std::lock_guard<std::mutex> lock(mutex);
            ++finished;
            changed.notify_all();
        });
    }
    {
        std::unique_lock<std::mutex> lock(mutex);
        while (finished < threads.size()) {
            if (stop_signal() != 0) {
                lock.unlock();
                end_stopped(progress, opts);
            }
            changed.wait_for(lock, std::chrono::milliseconds(100));
        }
    }
    for (auto& t : threads) {
        t.join();
    }
    if (!error.empty()) {
        return popcount_failure(progress, error + " (what was read is kept in \"" + opts.journal +
                                              "\"; run the same command again to resume)");
    }

    if (missing > 0 && missing == resumed + fetched) {
        return popcount_failure(
            progress, "none of the " + std::to_string(missing) + " store paths is in the cache \"" +
                          log::redact_url(opts.cache) + "\" (or the journal \"" + opts.journal +
                          "\"): is --cache right? Remove the journal after correcting it");
    }
    progress.phase("counting the closures of " + std::to_string(packages.size()) + " packages");
    const auto counts = graph.count(packages);
    if (stop_signal() != 0) {
        end_stopped(progress, opts);
    }
    const auto json = popularity_json(counts) + "\n";
    if (opts.output.empty()) {
        if (auto written = write_stdout(json); !written) {
            return popcount_failure(progress, written.error().message);
        }
    } else {
        const auto target = std::filesystem::absolute(opts.output);
        if (auto written = write_file_atomic(target.parent_path(), target, json); !written) {
            return popcount_failure(progress, written.error().message);
        }
    }
    progress.finish("counted " + std::to_string(packages.size()) + " packages over " +
                    std::to_string(graph.size()) + " store paths (" + std::to_string(fetched) +
                    " looked up in the cache, " + std::to_string(resumed) + " in the journal, " +
                    std::to_string(missing) + " not in the cache, " + std::to_string(invalid) +
                    " invalid lines); " + std::to_string(counts.size()) + " names");
    return 0;
}

} // namespace nixery
