#include "cmd/popcount.hpp"

#include "config.hpp"
#include "core/popcount.hpp"
#include "nix/nix.hpp"
#include "nix/source.hpp"
#include "util/files.hpp"
#include "util/lock.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <rapidjson/document.h>
#include <set>
#include <thread>
#include <unistd.h>

namespace nixery {

namespace {

// Phase lines on stderr; on a terminal, one line that updates in place with
// the elapsed time and, while building, how many packages are ready.
class Progress {
public:
    Progress() : m_tty(::isatty(STDERR_FILENO) == 1) {
        if (m_tty) {
            m_thread = std::thread([this] { run(); });
        }
    }
    ~Progress() {
        {
            std::lock_guard<std::mutex> lock(m_mutex);
            m_done = true;
        }
        m_wake.notify_all();
        if (m_thread.joinable()) {
            m_thread.join();
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

std::string nix_message(const NixFailure& f) {
    return "Nix (" + f.operation + ") failed: " + f.log_tail;
}

} // namespace

int popcount_command(const std::vector<std::string>& args) {
    std::string output;
    for (std::size_t i = 0; i < args.size(); ++i) {
        if (args[i] == "--output" && i + 1 < args.size()) {
            output = args[++i];
        } else {
            std::fprintf(stderr,
                         "usage: nixery popcount [--output FILE]\n"
                         "  counts, for the package set configured as for `nixery serve`\n"
                         "  (NIXERY_PKGS_PATH, NIXERY_PKGS_REPO or NIXERY_CHANNEL), how many\n"
                         "  packages' runtime closures contain each package\n");
            return 2;
        }
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
        return fail_with(resolved.error().message);
    }
    auto nix_source = source->prepare(*resolved);
    if (!nix_source) {
        return fail_with(nix_source.error().message);
    }
    const auto request = request_json({nix_source->nix_source, Arch::amd64, {}});

    progress.phase("evaluating the package set");
    auto listing = nix.eval_json(popcount_nix, "packages", request);
    if (!listing) {
        return fail_with(nix_message(listing.error()));
    }
    rapidjson::Document doc;
    doc.Parse(listing->c_str(), listing->size());
    if (doc.HasParseError() || !doc.IsArray()) {
        return fail_with("unexpected output from nix-instantiate");
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
        return fail_with(nix_message(built.error()));
    }
    auto invalid = nix.invalid_paths(outs);
    if (!invalid) {
        return fail_with(nix_message(invalid.error()));
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
            return fail_with(nix_message(graph.error()));
        }
        counts = count_popularity(*graph, valid);
    }
    const auto json = popularity_json(counts) + "\n";
    if (output.empty()) {
        std::fputs(json.c_str(), stdout);
    } else {
        const auto target = std::filesystem::absolute(output);
        if (auto written = write_file_atomic(target.parent_path(), target, json); !written) {
            return fail_with(written.error().message);
        }
    }
    progress.finish("counted " + std::to_string(valid.size()) + " of " +
                    std::to_string(outs.size()) + " packages (" +
                    std::to_string(outs.size() - valid.size()) + " failed to build); " +
                    std::to_string(counts.size()) + " names");
    return 0;
}

} // namespace nixery
