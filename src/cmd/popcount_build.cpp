#include "cmd/popcount_runs.hpp"

#include "cmd/progress.hpp"
#include "cmd/stop_signals.hpp"
#include "config.hpp"
#include "core/popcount.hpp"
#include "nix/nix.hpp"
#include "nix/source.hpp"
#include "util/files.hpp"
#include "util/lock.hpp"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <rapidjson/document.h>
#include <set>
#include <thread>

namespace nixery {

namespace {

std::string nix_message(const NixFailure& f) {
    return "Nix (" + f.operation + ") failed: " + f.log_tail;
}

} // namespace

int count_by_building(const std::string& output) {
    auto config = load_config(current_environment(), ConfigUse::tool);
    if (!config) {
        return popcount_failure(config.error().message);
    }
    // A git source keeps its mirror in the state directory; a tool run
    // without one gets a temporary directory.
    std::string temporary_state;
    if (config->state_dir.empty()) {
        char tmpl[] = "/tmp/nixery-popcount-XXXXXX";
        if (::mkdtemp(tmpl) == nullptr) {
            return popcount_failure("mkdtemp failed: " + errno_text(errno));
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
        return popcount_failure("cannot create \"" + config->locks().string() + "\"");
    }

    stop_on_signals();
    Progress progress;
    const Nix nix(nix_settings(*config));
    const auto popcount_nix = config->data.nix_dir / "popcount.nix";
    auto source = make_source(*config, nix);
    progress.phase("fetching " + config->describe_source());
    auto resolved = source->resolve("latest");
    if (!resolved) {
        return popcount_failure(progress, resolved.error().message);
    }
    auto nix_source = source->prepare(*resolved);
    // A source fetched in the background (a first clone) says when to ask
    // again; this process must stay for the fetch to finish.
    while (!nix_source && nix_source.error().retry_after > 0 && stop_signal() == 0) {
        std::this_thread::sleep_for(std::chrono::seconds(nix_source.error().retry_after));
        nix_source = source->prepare(*resolved);
    }
    if (!nix_source) {
        return popcount_failure(progress, nix_source.error().message);
    }
    const auto request = request_json({nix_source->nix_source, Arch::amd64, {}});

    progress.phase("evaluating the package set");
    auto listing = nix.eval_json(popcount_nix, "packages", request);
    if (!listing) {
        return popcount_failure(progress, nix_message(listing.error()));
    }
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseIterativeFlag>(listing->c_str(), listing->size());
    if (doc.HasParseError() || !doc.IsArray()) {
        return popcount_failure(progress, "unexpected output from nix-instantiate");
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
        return popcount_failure(progress, nix_message(built.error()));
    }
    auto invalid = nix.invalid_paths(outs);
    if (!invalid) {
        return popcount_failure(progress, nix_message(invalid.error()));
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
            return popcount_failure(progress, nix_message(graph.error()));
        }
        counts = count_popularity(*graph, valid);
    }
    if (stop_signal() != 0) {
        return popcount_failure(progress, "stopped");
    }
    const auto json = popularity_json(counts) + "\n";
    if (output.empty()) {
        if (auto written = write_stdout(json); !written) {
            return popcount_failure(progress, written.error().message);
        }
    } else {
        const auto target = std::filesystem::absolute(output);
        if (auto written = write_file_atomic(target.parent_path(), target, json); !written) {
            return popcount_failure(progress, written.error().message);
        }
    }
    progress.finish("counted " + std::to_string(valid.size()) + " of " +
                    std::to_string(outs.size()) + " packages (" +
                    std::to_string(outs.size() - valid.size()) + " failed to build); " +
                    std::to_string(counts.size()) + " names");
    return 0;
}

} // namespace nixery
