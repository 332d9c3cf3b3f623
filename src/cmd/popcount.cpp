#include "cmd/popcount.hpp"

#include "config.hpp"
#include "core/popcount.hpp"
#include "http/client.hpp"
#include "http/fetch.hpp"
#include "http/retry.hpp"
#include "nix/nix.hpp"
#include "nix/source.hpp"
#include "util/files.hpp"
#include "util/lock.hpp"
#include "util/log.hpp"
#include "util/text.hpp"

#include <algorithm>
#include <archive.h>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <fcntl.h>
#include <fstream>
#include <mutex>
#include <rapidjson/document.h>
#include <set>
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

// Phase lines on stderr; on a terminal, one line that updates in place with
// the elapsed time and, while building, how many packages are ready.
class Progress {
public:
    Progress() : m_tty(::isatty(STDERR_FILENO) == 1) {
        if (m_tty) {
            m_thread = std::thread([this] { run(); });
        }
    }
    ~Progress() { stop(); }

    // Stops updating the line and clears it, so that what is printed next
    // (an error) starts a line of its own and is not drawn over.
    void stop() {
        {
            std::lock_guard<std::mutex> lock(m_mutex);
            m_done = true;
        }
        m_wake.notify_all();
        if (m_thread.joinable()) {
            m_thread.join();
            std::fprintf(stderr, "\r\033[K");
        }
    }

    void phase(std::string text) {
        std::lock_guard<std::mutex> lock(m_mutex);
        if (m_tty && !m_phase.empty()) {
            std::fprintf(stderr, "\r\033[K%s done (%llds)\n", m_phase.c_str(), elapsed());
        }
        m_phase = std::move(text);
        m_detail.clear();
        m_started = std::chrono::steady_clock::now();
        if (!m_tty) {
            std::fprintf(stderr, "%s\n", m_phase.c_str());
        }
    }
    void detail(std::string text) {
        std::lock_guard<std::mutex> lock(m_mutex);
        m_detail = std::move(text);
    }
    void finish(const std::string& summary) {
        phase("");
        std::fprintf(stderr, "%s\n", summary.c_str());
    }
    bool tty() const { return m_tty; }

private:
    long long elapsed() const {
        return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                                m_started)
            .count();
    }
    void run() {
        std::unique_lock<std::mutex> lock(m_mutex);
        while (!m_done) {
            if (!m_phase.empty()) {
                std::fprintf(stderr, "\r\033[K%s %s %llds", m_phase.c_str(), m_detail.c_str(),
                             elapsed());
            }
            m_wake.wait_for(lock, std::chrono::milliseconds(250));
        }
    }

    bool m_tty;
    std::mutex m_mutex;
    std::condition_variable m_wake;
    bool m_done = false;
    std::string m_phase;
    std::string m_detail;
    std::chrono::steady_clock::time_point m_started = std::chrono::steady_clock::now();
    std::thread m_thread;
};

int fail_with(const std::string& message) {
    std::fprintf(stderr, "nixery popcount: %s\n", message.c_str());
    return 1;
}

int fail_with(Progress& progress, const std::string& message) {
    progress.stop();
    return fail_with(message);
}

std::string nix_message(const NixFailure& f) {
    return "Nix (" + f.operation + ") failed: " + f.log_tail;
}

// Splits `text` into lines, keeping an unfinished last line in `carry`.
template <typename F> void each_line(std::string& carry, std::string_view text, F&& on_line) {
    carry.append(text);
    std::size_t start = 0;
    for (auto nl = carry.find('\n'); nl != std::string::npos; nl = carry.find('\n', start)) {
        on_line(std::string_view(carry).substr(start, nl - start));
        start = nl + 1;
    }
    carry.erase(0, start);
}

// Decompresses `body` (xz, gzip, bzip2 or zstd, known by its magic;
// anything else, an empty body too, passes unchanged) piece by piece into
// `on_piece`, at most `max` bytes in all. Only filters libarchive runs
// itself: some of the others would start an outside program on
// downloaded bytes.
Result<void> decompress_each(std::string_view body, std::size_t max,
                             const std::function<void(std::string_view)>& on_piece) {
    if (body.empty()) {
        return {};
    }
    std::unique_ptr<archive, int (*)(archive*)> a(archive_read_new(), archive_read_free);
    archive_read_support_filter_xz(a.get());
    archive_read_support_filter_gzip(a.get());
    archive_read_support_filter_bzip2(a.get());
    archive_read_support_filter_zstd(a.get());
    archive_read_support_format_raw(a.get());
    archive_entry* entry = nullptr;
    if (archive_read_open_memory(a.get(), body.data(), body.size()) != ARCHIVE_OK ||
        archive_read_next_header(a.get(), &entry) != ARCHIVE_OK) {
        return fail(std::string("decompress failed: ") + archive_error_string(a.get()));
    }
    char buf[1 << 16];
    std::size_t total = 0;
    for (;;) {
        const auto n = archive_read_data(a.get(), buf, sizeof buf);
        if (n < 0) {
            return fail(std::string("decompress failed: ") + archive_error_string(a.get()));
        }
        if (n == 0) {
            return {};
        }
        total += static_cast<std::size_t>(n);
        if (total > max) {
            return fail("larger than " + std::to_string(max) + " bytes decompressed");
        }
        on_piece(std::string_view(buf, static_cast<std::size_t>(n)));
    }
}

// The lines of a store-paths file, plain or compressed (channels publish
// it with xz), decompressed as a stream.
Result<void> read_store_paths(const std::string& body,
                              const std::function<void(std::string_view)>& on_line) {
    std::string carry;
    TRY(decompress_each(body, std::size_t{1} << 30,
                        [&](std::string_view piece) { each_line(carry, piece, on_line); }));
    if (!carry.empty()) {
        on_line(carry);
    }
    return {};
}

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

struct CacheCount {
    std::string store_paths; // URL (http, https, file)
    std::string cache = "https://cache.nixos.org";
    std::string journal;
    std::string output;
    int jobs = 16;
};

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

int count_from_cache(const CacheCount& opts) {
    Progress progress;
    progress.phase("fetching " + log::redact_url(opts.store_paths));
    auto body = fetch_url(opts.store_paths, std::chrono::seconds(600), std::size_t{1} << 30);
    if (!body) {
        return fail_with(progress, body.error().message);
    }
    StorePathGraph graph;
    std::vector<std::uint32_t> packages;
    std::size_t invalid = 0;
    auto read = read_store_paths(*body, [&](std::string_view line) {
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
        return fail_with(progress, "read \"" + log::redact_url(opts.store_paths) +
                                       "\" failed: " + read.error().message);
    }

    if (packages.empty()) {
        return fail_with(progress,
                         "\"" + log::redact_url(opts.store_paths) + "\" lists no store paths (" +
                             std::to_string(invalid) +
                             " lines that are not one): is it a channel's store-paths file?");
    }
    std::size_t missing = 0;
    auto loaded = load_journal(opts.journal, graph, missing);
    if (!loaded) {
        return fail_with(progress, loaded.error().message);
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
        return fail_with(progress, "open \"" + opts.journal + "\" failed: " + errno_text(errno));
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
    for (int i = 0; i < opts.jobs; ++i) {
        threads.emplace_back(worker);
    }
    for (auto& t : threads) {
        t.join();
    }
    if (!error.empty()) {
        return fail_with(progress, error + " (what was read is kept in \"" + opts.journal +
                                       "\"; run the same command again to resume)");
    }

    if (missing > 0 && missing == resumed + fetched) {
        return fail_with(
            progress, "none of the " + std::to_string(missing) + " store paths is in the cache \"" +
                          log::redact_url(opts.cache) + "\" (or the journal \"" + opts.journal +
                          "\"): is --cache right? Remove the journal after correcting it");
    }
    progress.phase("counting the closures of " + std::to_string(packages.size()) + " packages");
    const auto counts = graph.count(packages);
    const auto json = popularity_json(counts) + "\n";
    if (opts.output.empty()) {
        std::fputs(json.c_str(), stdout);
    } else {
        const auto target = std::filesystem::absolute(opts.output);
        if (auto written = write_file_atomic(target.parent_path(), target, json); !written) {
            return fail_with(progress, written.error().message);
        }
    }
    progress.finish("counted " + std::to_string(packages.size()) + " packages over " +
                    std::to_string(graph.size()) + " store paths (" + std::to_string(fetched) +
                    " looked up in the cache, " + std::to_string(resumed) + " in the journal, " +
                    std::to_string(missing) + " not in the cache, " + std::to_string(invalid) +
                    " invalid lines); " + std::to_string(counts.size()) + " names");
    return 0;
}

} // namespace

int popcount_command(const std::vector<std::string>& args) {
    std::string output;
    CacheCount cache;
    bool from_cache = false;
    bool cache_option = false;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const bool has_value = i + 1 < args.size();
        if (args[i] == "--output" && has_value) {
            output = args[++i];
        } else if (args[i] == "--channel" && has_value) {
            const auto& channel = args[++i];
            if (channel.empty() || channel.find_first_of("/?#% ") != std::string::npos) {
                return fail_with("--channel \"" + channel + "\" is not a channel name");
            }
            cache.store_paths = "https://channels.nixos.org/" + channel + "/store-paths.xz";
            from_cache = true;
        } else if (args[i] == "--store-paths" && has_value) {
            cache.store_paths = args[++i];
            from_cache = true;
        } else if (args[i] == "--cache" && has_value) {
            cache.cache = args[++i];
            cache_option = true;
        } else if (args[i] == "--journal" && has_value) {
            cache.journal = args[++i];
            cache_option = true;
        } else if (args[i] == "--jobs" && has_value) {
            const auto& v = args[++i];
            const auto jobs = parse_decimal(v, 999);
            if (!jobs || *jobs == 0) {
                return fail_with("--jobs must be a whole number from 1 to 999, not \"" + v + "\"");
            }
            cache.jobs = static_cast<int>(*jobs);
            cache_option = true;
        } else {
            std::fprintf(
                stderr,
                "usage: nixery popcount [--output FILE]\n"
                "  counts, for the package set configured as for `nixery serve`\n"
                "  (NIXERY_PKGS_PATH, NIXERY_PKGS_REPO or NIXERY_CHANNEL), how many\n"
                "  packages' runtime closures contain each package, building them\n"
                "usage: nixery popcount (--channel NAME | --store-paths URL) [--cache URL]\n"
                "                       [--journal FILE] [--jobs N] [--output FILE]\n"
                "  counts the same from a channel's list of store paths\n"
                "  (https://channels.nixos.org/NAME/store-paths.xz) and the narinfo files\n"
                "  of a binary cache (default https://cache.nixos.org), without building\n"
                "  or downloading anything else; the journal (default FILE.journal, or\n"
                "  popcount.journal) keeps what was read, so a run resumes where an\n"
                "  interrupted one stopped\n");
            return 2;
        }
    }
    if (from_cache) {
        while (!cache.cache.empty() && cache.cache.back() == '/') {
            cache.cache.pop_back();
        }
        // Narinfo files come over HTTP alone (the client speaks no file://).
        const auto scheme = ascii_lowercase(cache.cache.substr(0, cache.cache.find("://")));
        if (scheme != "http" && scheme != "https") {
            return fail_with("--cache \"" + log::redact_url(cache.cache) +
                             "\" is not an http(s):// URL: serve a file:// cache over HTTP, e.g. "
                             "python3 -m http.server");
        }
        cache.output = output;
        if (cache.journal.empty()) {
            cache.journal = output.empty() ? "popcount.journal" : output + ".journal";
        }
        return count_from_cache(cache);
    }
    if (cache_option) {
        return fail_with("--cache, --journal and --jobs need --channel or --store-paths");
    }
    auto config = load_config(current_environment(), ConfigUse::tool);
    if (!config) {
        return fail_with(config.error().message);
    }
    // A git source keeps its mirror in the state directory; a tool run
    // without one gets a temporary directory.
    std::string temporary_state;
    if (config->state_dir.empty()) {
        char tmpl[] = "/tmp/nixery-popcount-XXXXXX";
        if (::mkdtemp(tmpl) == nullptr) {
            return fail_with("mkdtemp failed: " + errno_text(errno));
        }
        temporary_state = tmpl;
        config->state_dir = temporary_state;
    }
    struct Cleanup {
        std::string dir;
        ~Cleanup() {
            if (!dir.empty()) {
                std::error_code ec;
                std::filesystem::remove_all(dir, ec);
            }
        }
    } cleanup{temporary_state};
    if (auto made = make_private_dir(config->locks());
        !made || !LockTable::open(config->locks() / "builds.lock")) {
        return fail_with("cannot create \"" + config->locks().string() + "\"");
    }

    Progress progress;
    const Nix nix(nix_settings(*config));
    const auto popcount_nix = config->data.nix_dir / "popcount.nix";
    auto source = make_source(*config, nix);
    progress.phase("fetching " + config->describe_source());
    auto resolved = source->resolve("latest");
    if (!resolved) {
        return fail_with(progress, resolved.error().message);
    }
    auto nix_source = source->prepare(*resolved);
    // A source fetched in the background (a first clone) says when to ask
    // again; this process must stay for the fetch to finish.
    while (!nix_source && nix_source.error().retry_after > 0) {
        std::this_thread::sleep_for(std::chrono::seconds(nix_source.error().retry_after));
        nix_source = source->prepare(*resolved);
    }
    if (!nix_source) {
        return fail_with(progress, nix_source.error().message);
    }
    const auto request = request_json({nix_source->nix_source, Arch::amd64, {}});

    progress.phase("evaluating the package set");
    auto listing = nix.eval_json(popcount_nix, "packages", request);
    if (!listing) {
        return fail_with(progress, nix_message(listing.error()));
    }
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseIterativeFlag>(listing->c_str(), listing->size());
    if (doc.HasParseError() || !doc.IsArray()) {
        return fail_with(progress, "unexpected output from nix-instantiate");
    }
    std::vector<std::string> outs;
    for (const auto& p : doc.GetArray()) {
        if (p.IsObject() && p.HasMember("out") && p["out"].IsString()) {
            outs.emplace_back(p["out"].GetString());
        }
    }
    std::sort(outs.begin(), outs.end());
    outs.erase(std::unique(outs.begin(), outs.end()), outs.end());

    progress.phase("building " + std::to_string(outs.size()) + " packages (failures are skipped):");
    std::atomic<bool> building{true};
    std::thread watcher;
    if (progress.tty()) {
        watcher = std::thread([&] {
            while (building) {
                if (auto missing = nix.invalid_paths(outs)) {
                    progress.detail(std::to_string(outs.size() - missing->size()) + "/" +
                                    std::to_string(outs.size()) + " ready,");
                }
                for (int i = 0; i < 20 && building; ++i) {
                    std::this_thread::sleep_for(std::chrono::milliseconds(100));
                }
            }
        });
    }
    auto built = nix.build_keep_going(popcount_nix, "build", request);
    building = false;
    if (watcher.joinable()) {
        watcher.join();
    }
    if (!built) {
        return fail_with(progress, nix_message(built.error()));
    }
    auto invalid = nix.invalid_paths(outs);
    if (!invalid) {
        return fail_with(progress, nix_message(invalid.error()));
    }
    const std::set<std::string> skip(invalid->begin(), invalid->end());
    std::vector<std::string> valid;
    for (const auto& o : outs) {
        if (skip.count(o) == 0) {
            valid.push_back(o);
        }
    }

    progress.phase("reading the closures of " + std::to_string(valid.size()) + " packages");
    std::map<std::string, std::uint64_t> counts;
    if (!valid.empty()) {
        auto graph = nix.closure(valid);
        if (!graph) {
            return fail_with(progress, nix_message(graph.error()));
        }
        counts = count_popularity(*graph, valid);
    }
    const auto json = popularity_json(counts) + "\n";
    if (output.empty()) {
        std::fputs(json.c_str(), stdout);
    } else {
        const auto target = std::filesystem::absolute(output);
        if (auto written = write_file_atomic(target.parent_path(), target, json); !written) {
            return fail_with(progress, written.error().message);
        }
    }
    progress.finish("counted " + std::to_string(valid.size()) + " of " +
                    std::to_string(outs.size()) + " packages (" +
                    std::to_string(outs.size() - valid.size()) + " failed to build); " +
                    std::to_string(counts.size()) + " names");
    return 0;
}

} // namespace nixery
