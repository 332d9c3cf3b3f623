#include "nix/nix.hpp"

#include "util/log.hpp"
#include "util/subprocess.hpp"
#include "util/text.hpp"

#include <algorithm>
#include <csignal>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <unordered_set>

namespace nixery {

namespace {

constexpr std::size_t k_log_lines = 25;
// image.nix's trace before it forces a requested package.
constexpr std::string_view k_package_trace = "nixery-evaluating-package ";
// The variables nixpkgs reads besides its `config`: the operator's
// NIXERY_NIXPKGS_CONFIG decides, not the environment the service runs in.
const std::vector<std::string> k_nix_environment = {
    "NO_COLOR=1",
    "NIXPKGS_ALLOW_UNFREE=",
    "NIXPKGS_ALLOW_INSECURE=",
    "NIXPKGS_ALLOW_BROKEN=",
    "NIXPKGS_ALLOW_UNSUPPORTED_SYSTEM=",
    "NIXPKGS_ALLOW_NONSOURCE=",
    "NIXPKGS_CONFIG=",
};

// Nix colours its messages when it thinks a terminal is listening; a log
// tail in a JSON error must be plain text.
std::string strip_ansi(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\x1b' && i + 1 < text.size() && text[i + 1] == '[') {
            i += 2;
            while (i < text.size() && !(text[i] >= '@' && text[i] <= '~')) {
                ++i;
            }
            continue;
        }
        out += text[i];
    }
    return out;
}

void write_path(rapidjson::Writer<rapidjson::StringBuffer>& w, std::string_view package) {
    w.StartArray();
    for (const auto& segment : attribute_path(package)) {
        w.String(segment.c_str(), static_cast<rapidjson::SizeType>(segment.size()));
    }
    w.EndArray();
}

std::vector<std::string> strings_of(const rapidjson::Value& v) {
    std::vector<std::string> out;
    if (v.IsArray()) {
        for (const auto& s : v.GetArray()) {
            if (s.IsString()) {
                out.emplace_back(s.GetString());
            }
        }
    }
    return out;
}

} // namespace

std::string clean_nix_output(std::string_view text) {
    const auto plain = strip_ansi(text);
    std::string out;
    out.reserve(plain.size());
    for (std::size_t pos = 0; pos < plain.size();) {
        const auto end = std::min(plain.find('\n', pos), plain.size() - 1) + 1;
        const auto line = std::string_view(plain).substr(pos, end - pos);
        if (line.find(k_package_trace) == std::string_view::npos) {
            out += line;
        }
        pos = end;
    }
    return out;
}

std::optional<std::string> package_being_evaluated(std::string_view stderr_text) {
    const auto at = stderr_text.rfind(k_package_trace);
    if (at == std::string_view::npos) {
        return std::nullopt;
    }
    auto rest = stderr_text.substr(at + k_package_trace.size());
    rest = rest.substr(0, rest.find('\n'));
    const std::string json(rest);
    rapidjson::Document segments;
    segments.Parse<rapidjson::kParseIterativeFlag>(json.c_str(), json.size());
    if (segments.HasParseError() || !segments.IsArray() || segments.Empty()) {
        return std::nullopt;
    }
    std::string name;
    for (const auto& segment : segments.GetArray()) {
        if (!segment.IsString()) {
            return std::nullopt;
        }
        name += (name.empty() ? "" : ".") + std::string(segment.GetString());
    }
    return name;
}

namespace {

// The line of `text` that holds offset `at`, from `at` to its end.
std::string_view rest_of_line(std::string_view text, std::size_t at) {
    const auto end = text.find('\n', at);
    return text.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at);
}

// nixpkgs before 2026: "Package ‘NAME’ in FILE:LINE REASON, refusing to
// evaluate." followed by advice for whoever runs Nix.
std::optional<std::string> old_refusal(std::string_view plain) {
    const auto end = plain.rfind(", refusing to evaluate");
    if (end == std::string::npos) {
        return std::nullopt;
    }
    const auto start = plain.rfind("Package \u2018", end);
    if (start == std::string::npos) {
        return std::nullopt;
    }
    std::string reason(plain.substr(start, end - start));
    const auto name_end = reason.find("\u2019");
    if (name_end != std::string::npos) {
        const auto after_name = name_end + std::string_view("\u2019").size();
        // " in /nix/store/…/pkgs/…/default.nix:12 has an unfree license": the
        // position is the server's business.
        if (reason.compare(after_name, 4, " in ") == 0) {
            const auto position_end = reason.find(' ', after_name + 4);
            if (position_end != std::string::npos) {
                reason.erase(after_name, position_end - after_name);
            }
        }
    }
    // The unsupported-platform reason spans lines; keep the first.
    reason = reason.substr(0, reason.find('\n'));
    while (!reason.empty() && (reason.back() == ':' || reason.back() == ' ')) {
        reason.pop_back();
    }
    return reason;
}

// nixpkgs since 2026 (check-meta.nix's `handle`): "Refusing to evaluate
// package 'NAME' in FILE:LINE because it REASON", then the remediation for
// whoever runs Nix. A reason ending in ':' lists its problems on the
// following lines ("has problems:" then "  - broken: …"); those are kept,
// other continuation lines (the platforms of an unsupported package) are not.
std::optional<std::string> current_refusal(std::string_view plain) {
    constexpr std::string_view marker = "Refusing to evaluate package '";
    const auto start = plain.rfind(marker);
    if (start == std::string_view::npos) {
        return std::nullopt;
    }
    const auto line = rest_of_line(plain, start + marker.size());
    const auto name_end = line.find('\'');
    constexpr std::string_view because = " because it ";
    const auto because_at = line.find(because);
    if (name_end == std::string_view::npos || because_at == std::string_view::npos ||
        because_at < name_end) {
        return std::nullopt;
    }
    std::string reason = "Package \u2018" + std::string(line.substr(0, name_end)) + "\u2019 " +
                         std::string(trim_blanks(line.substr(because_at + because.size())));
    if (reason.back() == ':') {
        reason.pop_back();
        const char* separator = ": ";
        int listed = 0;
        for (const auto next : split_nonempty(plain.substr(start + marker.size() + line.size()))) {
            const auto item = trim_blanks(next);
            if (!item.starts_with("- ") || listed++ == 8) {
                break;
            }
            reason += separator + std::string(item.substr(2));
            separator = "; ";
        }
    }
    return reason;
}

} // namespace

std::optional<std::string> refusal_reason(std::string_view stderr_text) {
    const std::string plain = strip_ansi(stderr_text);
    if (auto reason = current_refusal(plain)) {
        return reason;
    }
    return old_refusal(plain);
}

namespace {

bool contains(std::string_view text, std::string_view part) {
    return text.find(part) != std::string_view::npos;
}

// An HTTP status a client must not just retry: 4xx but 408 (timeout) and
// 429 (too many requests), as Nix ("HTTP error 404"), curl and git ("The
// requested URL returned error: 404") write it.
bool names_client_error(std::string_view line) {
    for (const std::string_view marker : {"HTTP error ", "returned error: "}) {
        for (auto at = line.find(marker); at != std::string_view::npos;
             at = line.find(marker, at + 1)) {
            const auto code = line.substr(at + marker.size(), 3);
            if (code.size() == 3 && code[0] == '4' && code != "408" && code != "429") {
                return true;
            }
        }
    }
    return false;
}

// A line where a download failed: Nix's own ("unable to download 'URL':
// Couldn't resolve host name (6)"), Nix giving up on a binary cache, or a
// fetcher's curl ("curl: (7) Failed to connect") or git ("fatal: unable to
// access 'URL': Could not resolve host"). curl's lines count only in a
// fetch (`fetcher`: nixpkgs' fetchurl ends "cannot download … from any
// mirror"), not in a test suite's output.
bool is_download_failure(std::string_view line, bool fetcher) {
    // Nix's warnings about a substituter it could not reach ("warning:
    // unable to download '…/nix-cache-info'") say nothing about why a
    // build failed: it goes on without that cache.
    if (line.substr(0, 8) == "warning:") {
        return false;
    }
    if (contains(line, "usually happens due to networking issues")) {
        return true;
    }
    const bool download = contains(line, "unable to download '") ||
                          contains(line, "unable to access '") ||
                          (fetcher && contains(line, "curl: ("));
    return download && !names_client_error(line);
}

} // namespace

bool derivation_lost(const NixFailure& failure) {
    return failure.operation == "build" &&
           contains(failure.log_tail, "cannot build missing derivation");
}

NixFailure::Kind failure_kind_of(std::string_view tail) {
    // ENOSPC, from Nix or a builder, or Nix's own note after a build that
    // failed where little disk was free: the server's disk, not the image.
    if (contains(tail, "No space left on device") ||
        contains(tail, "may have been caused by lack of free disk space")) {
        return NixFailure::Kind::disk_full;
    }
    // No daemon to talk to (NIX_REMOTE=daemon, socket missing).
    if (contains(tail, "cannot connect to socket") || contains(tail, "cannot connect to daemon")) {
        return NixFailure::Kind::not_runnable;
    }
    // Nix: "builder for '…drv' failed due to signal 9 (Killed)". Nothing
    // but the kernel (out of memory) or the server's operator sends it.
    if (contains(tail, "failed due to signal 9 (Killed)")) {
        return NixFailure::Kind::killed;
    }
    // fork() or clone() refused (EAGAIN: TasksMax, RLIMIT_NPROC; ENOMEM):
    // "unable to fork: Resource temporarily unavailable", with the sandbox
    // "cloning builder process: …". The server's load, not the image.
    if (contains(tail, "error: unable to fork: ") ||
        contains(tail, "error: cloning builder process: ")) {
        return NixFailure::Kind::no_process;
    }
    const auto lines = split_nonempty(tail);
    // Nix found no builder for a derivation's system or features: none
    // configured (NIXERY_PLATFORMS without a builder of that platform), or
    // a remote builder that is down. Nix 2.8: "error: a
    // 'aarch64-linux' with features {} is required to build '…drv', but I
    // am a 'x86_64-linux' with features {…}"; newer Nix "Cannot build
    // '…drv'. Reason: required system or feature not available"; with
    // max-jobs = 0 and no remote builder, "unable to start any build".
    if (std::any_of(lines.begin(), lines.end(), [](std::string_view line) {
            return (contains(line, " is required to build '") &&
                    contains(line, ", but I am a '")) ||
                   contains(line, "required system or feature not available") ||
                   contains(line, "error: unable to start any build;");
        })) {
        return NixFailure::Kind::no_builder;
    }
    const bool fetcher = contains(tail, "from any mirror");
    const bool network = std::any_of(lines.begin(), lines.end(), [&](std::string_view line) {
        return is_download_failure(line, fetcher);
    });
    return network ? NixFailure::Kind::network : NixFailure::Kind::failed;
}

std::string request_json(const NixRequest& request) {
    rapidjson::Document source;
    source.Parse<rapidjson::kParseIterativeFlag>(request.source_json.c_str(),
                                                 request.source_json.size());
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("source");
    source.Accept(w);
    w.Key("system");
    const auto system = nix_system(request.arch);
    w.String(system.data(), static_cast<rapidjson::SizeType>(system.size()));
    w.Key("packages");
    w.StartArray();
    for (const auto& p : request.packages) {
        write_path(w, p);
    }
    w.EndArray();
    w.Key("implicit");
    w.StartArray();
    for (const auto& p : implicit_packages()) {
        write_path(w, p);
    }
    w.EndArray();
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize());
}

std::vector<std::string> Evaluation::out_paths() const {
    std::vector<std::string> out;
    for (const auto* list : {&packages, &implicit}) {
        for (const auto& p : *list) {
            if (std::find(out.begin(), out.end(), p.out_path) == out.end()) {
                out.push_back(p.out_path);
            }
        }
    }
    return out;
}

std::vector<std::string> Evaluation::derived_paths() const {
    std::vector<std::string> out;
    for (const auto* list : {&packages, &implicit}) {
        for (const auto& p : *list) {
            auto path = p.drv_path + "!" + p.output;
            if (std::find(out.begin(), out.end(), path) == out.end()) {
                out.push_back(std::move(path));
            }
        }
    }
    return out;
}

bool Evaluation::has_attribute(std::string_view attr) const {
    return std::any_of(packages.begin(), packages.end(), [&](const ResolvedPackage& p) {
        return p.attr_path.size() == 1 && p.attr_path[0] == attr;
    });
}

namespace {

// Runs Nix; a failure only when it could not be run at all.
Result<ProcessResult, NixFailure> run_nix_raw(std::vector<std::string> argv,
                                              const std::string& operation,
                                              std::chrono::seconds timeout) {
    ProcessSpec spec;
    spec.argv = std::move(argv);
    spec.timeout = timeout;
    spec.env = k_nix_environment;
    log::debug("running nix", {{"argv0", spec.argv[0]}, {"operation", operation}});
    auto run = run_process(spec);
    if (!run) {
        return unexpected(
            NixFailure{NixFailure::Kind::not_runnable, operation, run.error().message});
    }
    return std::move(*run);
}

NixFailure failure_of(const ProcessResult& run, std::string operation, const std::string& argv0,
                      std::chrono::seconds timeout) {
    auto tail = tail_lines(clean_nix_output(run.err_tail), k_log_lines);
    if (run.stopped) {
        return NixFailure{
            NixFailure::Kind::stopped, std::move(operation), std::move(tail), {}, {}, {}};
    }
    if (run.timed_out) {
        return NixFailure{NixFailure::Kind::timed_out,
                          std::move(operation),
                          std::move(tail),
                          {},
                          "NIX_TIMEOUT",
                          timeout};
    }
    if (tail.empty()) {
        tail = argv0 + " failed with " + run.describe_exit(timeout);
    }
    auto kind = failure_kind_of(tail);
    if (run.signal == SIGKILL) {
        kind = NixFailure::Kind::killed; // Nix itself, out of memory
    }
    return NixFailure{kind, std::move(operation), std::move(tail), {}, {}, {}};
}

Result<ProcessResult, NixFailure> run_nix(std::vector<std::string> argv, std::string operation,
                                          std::chrono::seconds timeout) {
    const auto argv0 = argv.at(0);
    TRY_ASSIGN(auto run, run_nix_raw(std::move(argv), operation, timeout));
    if (!run.ok()) {
        return unexpected(failure_of(run, std::move(operation), argv0, timeout));
    }
    return run;
}

// Makes the valid store path `path` a GC root at `root` (replacing what
// was there): what a process added to the store is only a temporary root
// of that process.
Result<void, NixFailure> add_root(const std::string& path, const std::filesystem::path& root,
                                  std::string operation, std::chrono::seconds timeout) {
    TRY(run_nix({"nix-store", "--realise", "--add-root", root.string(), path}, std::move(operation),
                timeout));
    return {};
}

// The store path a Nix command printed last, made a GC root at `root`.
Result<std::string, NixFailure> root_printed_path(const ProcessResult& run,
                                                  const std::filesystem::path& root,
                                                  const std::string& operation,
                                                  std::chrono::seconds timeout) {
    const auto lines = split_nonempty(run.out);
    if (lines.empty() || lines.back().find('/') != 0) {
        return unexpected(NixFailure{NixFailure::Kind::failed, operation,
                                     "unexpected output: " + run.out.substr(0, 200)});
    }
    std::string path(lines.back());
    TRY(add_root(path, root, operation, timeout));
    return path;
}

// Nix's exit status for a build that failed: 100, plus 1 when a builder
// timed out (since Nix 2.0, see "Exit status" in nix-store --realise's
// manual). Through a Nix daemon the status is lost (the daemon sends the
// error without it, and nix-store exits with 1); then Nix's own words tell,
// "error: building of '…' timed out after 3 seconds" with our `timeout`,
// which a builder's own output (printed unprefixed, "error: fetching …
// timed out after 30 seconds") is not taken for unless it names that very
// limit. "… seconds of silence" is max-silent-time, not NIX_TIMEOUT's.
bool builder_timed_out(const ProcessResult& run, std::chrono::seconds timeout) {
    if (run.exit_code >= 100 && run.exit_code < 116) {
        return ((run.exit_code - 100) & 1) != 0;
    }
    if (run.exit_code != 1) {
        return false;
    }
    const auto plain = strip_ansi(run.err_tail);
    const auto words = " timed out after " + std::to_string(timeout.count()) + " seconds";
    for (const auto line : split_nonempty(plain)) {
        const auto said = trim_blanks(line);
        if (said.starts_with("error: ") && said.ends_with(words)) {
            return true;
        }
    }
    return false;
}

std::vector<std::string> expression_args(const NixSettings& settings,
                                         const std::filesystem::path& file, const char* attr,
                                         const std::string& request) {
    return {file.string(), "-A", attr, "--argstr", "request", request, "--argstr", "nixpkgsConfig",
            settings.nixpkgs_config.string(),
            // Builds during evaluation (import from derivation) are builds too.
            "--timeout", std::to_string(settings.timeout.count())};
}

// The directory image.nix imports the package set from (request_json's
// "source"): a git commit's or a channel's store path, or the configured
// directory; empty when the request names none.
std::string source_path_of(const std::string& request) {
    rapidjson::Document req;
    req.Parse<rapidjson::kParseIterativeFlag>(request.c_str(), request.size());
    if (req.HasParseError() || !req.IsObject() || !req.HasMember("source") ||
        !req["source"].IsObject() || !req["source"].HasMember("path") ||
        !req["source"]["path"].IsString()) {
        return {};
    }
    return req["source"]["path"].GetString();
}

// Nix's positions name the package set's files by its directory
// ("at /nix/store/…-source/default.nix:3:1"): where the server keeps it,
// as "<package set>" (the registry's edge says so of a configured
// directory; a git commit's or a channel's store path is known only here).
std::string without_source_path(std::string text, const std::string& path) {
    if (path.size() >= 5) { // not "/" or "/nix": too common to replace
        replace_path(text, path, "<package set>");
    }
    return text;
}

Result<ResolvedPackage> parse_package(const rapidjson::Value& v, std::string name) {
    ResolvedPackage p;
    p.name = std::move(name);
    const auto string = [&](const char* key) {
        return v.IsObject() && v.HasMember(key) && v[key].IsString();
    };
    if (!string("out") || !string("drv") || !string("output")) {
        return fail("malformed package in evaluation");
    }
    p.out_path = v["out"].GetString();
    p.drv_path = v["drv"].GetString();
    p.output = v["output"].GetString();
    if (const auto attr = v.FindMember("attrPath"); attr != v.MemberEnd()) {
        p.attr_path = strings_of(attr->value);
    }
    return p;
}

} // namespace

Result<Evaluation, NixFailure> Nix::evaluate(const std::string& request) const {
    auto argv = std::vector<std::string>{"nix-instantiate", "--eval", "--strict", "--json",
                                         "--read-write-mode"};
    auto rest = expression_args(m_settings, m_settings.expression, "evaluate", request);
    argv.insert(argv.end(), rest.begin(), rest.end());
    TRY_ASSIGN(auto run, run_nix_raw(std::move(argv), "evaluate", m_settings.timeout));
    if (!run.ok()) {
        auto failure = failure_of(run, "evaluate", "nix-instantiate", m_settings.timeout);
        failure.package = package_being_evaluated(run.err_tail).value_or("");
        if (!run.timed_out && !failure.package.empty()) {
            if (auto reason = refusal_reason(run.err_tail)) {
                failure.kind = NixFailure::Kind::refused;
                failure.log_tail = std::move(*reason);
            }
        }
        failure.log_tail =
            without_source_path(std::move(failure.log_tail), source_path_of(request));
        return unexpected(std::move(failure));
    }

    auto ev = parse_evaluation(run.out, request);
    if (!ev) {
        return unexpected(
            NixFailure{NixFailure::Kind::failed, "evaluate",
                       "unexpected output from nix-instantiate: " + ev.error().message});
    }
    return std::move(*ev);
}

Result<Evaluation> parse_evaluation(std::string_view out, std::string_view request) {
    const auto bad = [&](std::string what) { return fail(std::move(what)); };
    rapidjson::Document req;
    req.Parse<rapidjson::kParseIterativeFlag>(request.data(), request.size());
    if (req.HasParseError() || !req.IsObject() || !req.HasMember("packages") ||
        !req["packages"].IsArray()) {
        return bad("the request is not one of request_json");
    }
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseIterativeFlag>(out.data(), out.size());
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("packages") ||
        !doc["packages"].IsArray() || !doc.HasMember("implicit") || !doc["implicit"].IsArray()) {
        return bad(std::string(out.substr(0, 200)));
    }
    const auto& wanted = req["packages"];
    const auto& got = doc["packages"];
    if (got.Size() != wanted.Size()) {
        return bad("package count differs from the request");
    }
    Evaluation ev;
    ev.system_applied = doc.HasMember("systemApplied") && doc["systemApplied"].IsBool() &&
                        doc["systemApplied"].GetBool();
    for (rapidjson::SizeType i = 0; i < got.Size(); ++i) {
        std::string name;
        if (wanted[i].IsArray()) {
            for (const auto& seg : wanted[i].GetArray()) {
                if (seg.IsString()) {
                    name += (name.empty() ? "" : ".") + std::string(seg.GetString());
                }
            }
        }
        const auto& p = got[i];
        const std::string status = p.IsObject() && p.HasMember("status") && p["status"].IsString()
                                       ? p["status"].GetString()
                                       : "";
        if (status == "found") {
            auto pkg = parse_package(p, name);
            if (!pkg) {
                return bad(pkg.error().message);
            }
            ev.packages.push_back(std::move(*pkg));
        } else if (status == "missing") {
            ev.missing.push_back(name);
        } else if (status == "not-a-package") {
            ev.not_packages.push_back(name);
        } else {
            return bad("unknown status of package \"" + name + "\"");
        }
    }
    for (const auto& p : doc["implicit"].GetArray()) {
        auto pkg = parse_package(p, "");
        if (!pkg) {
            return bad(pkg.error().message);
        }
        pkg->name = pkg->attr_path.empty() ? "" : pkg->attr_path.back();
        ev.implicit.push_back(std::move(*pkg));
    }
    return ev;
}

Result<void, NixFailure> Nix::realise(const Evaluation& evaluation,
                                      const std::filesystem::path& root_dir,
                                      std::chrono::steady_clock::time_point started) const {
    const auto paths = evaluation.derived_paths();
    if (paths.empty()) {
        return {};
    }
    const auto left = std::chrono::duration_cast<std::chrono::seconds>(
        started + m_settings.build_timeout - std::chrono::steady_clock::now());
    const auto limit = std::max(left, std::chrono::seconds(1));
    // One call: Nix builds what the outputs need in parallel. The roots are
    // named result, result-2, … by Nix.
    auto argv = std::vector<std::string>{"nix-store",  "--realise",
                                         "--timeout",  std::to_string(m_settings.timeout.count()),
                                         "--add-root", (root_dir / "result").string()};
    argv.insert(argv.end(), paths.begin(), paths.end());
    TRY_ASSIGN(const auto run, run_nix_raw(std::move(argv), "build", limit));
    if (run.ok()) {
        return {};
    }
    auto failure = failure_of(run, "build", "nix-store", limit);
    if (run.timed_out) {
        failure.limit = "NIXERY_BUILD_TIMEOUT";
        failure.limit_seconds = m_settings.build_timeout;
    } else if (builder_timed_out(run, m_settings.timeout)) {
        failure.kind = NixFailure::Kind::timed_out;
        failure.limit = "NIX_TIMEOUT";
        failure.limit_seconds = m_settings.timeout;
    }
    return unexpected(std::move(failure));
}

Result<std::string, NixFailure> Nix::fetch_tarball(const std::string& url,
                                                   const std::filesystem::path& root,
                                                   std::chrono::seconds limit) const {
    // nix-prefetch-url downloads every time (no tarball-ttl cache, so no
    // copy per evaluation as builtins.fetchTarball makes on Nix 2.21-2.24,
    // NixOS/nix#11271), unpacks a single top-level directory as its
    // content, and names the result "source" like fetchTarball. Identical
    // content is one store path.
    TRY_ASSIGN(const auto run,
               run_nix({"nix-prefetch-url", "--unpack", "--print-path", "--name", "source", url},
                       "fetch channel", limit));
    return root_printed_path(run, root, "fetch channel", m_settings.timeout);
}

Result<std::string, NixFailure> Nix::add_tree(const std::filesystem::path& tree,
                                              const std::filesystem::path& root) const {
    TRY_ASSIGN(const auto run,
               run_nix({"nix-store", "--add", tree.string()}, "add source", m_settings.timeout));
    return root_printed_path(run, root, "add source", m_settings.timeout);
}

Result<void, NixFailure>
run_nix_on_paths(const std::vector<std::string>& command, const std::vector<std::string>& paths,
                 const std::string& operation, std::chrono::seconds timeout,
                 const std::function<Result<void, NixFailure>(const std::string&)>& on_output) {
    for (std::size_t first = 0; first < paths.size(); first += k_paths_per_call) {
        auto argv = command;
        const auto last = std::min(paths.size(), first + k_paths_per_call);
        argv.insert(argv.end(), paths.begin() + static_cast<std::ptrdiff_t>(first),
                    paths.begin() + static_cast<std::ptrdiff_t>(last));
        TRY_ASSIGN(const auto run, run_nix(std::move(argv), operation, timeout));
        TRY(on_output(run.out));
    }
    return {};
}

Result<ClosureGraph, NixFailure> Nix::closure(const std::vector<std::string>& roots) const {
    ClosureGraph graph{roots, {}};
    if (roots.empty()) {
        return graph; // and `nix-store --dump-db` without paths would dump the whole store
    }
    // The closures of batches of roots overlap: each path once.
    std::vector<std::string> paths;
    std::unordered_set<std::string> seen;
    TRY(run_nix_on_paths({"nix-store", "--query", "--requisites"}, roots, "query closure",
                         m_settings.timeout,
                         [&](const std::string& out) -> Result<void, NixFailure> {
                             for (const auto path : split_nonempty(out)) {
                                 if (seen.emplace(path).second) {
                                     paths.emplace_back(path);
                                 }
                             }
                             return {};
                         }));
    TRY(run_nix_on_paths(
        {"nix-store", "--dump-db"}, paths, "query closure", m_settings.timeout,
        [&](const std::string& out) -> Result<void, NixFailure> {
            auto infos = parse_validity_registration(out);
            if (!infos) {
                return unexpected(
                    NixFailure{NixFailure::Kind::failed, "query closure", infos.error().message});
            }
            graph.paths.insert(graph.paths.end(), std::make_move_iterator(infos->begin()),
                               std::make_move_iterator(infos->end()));
            return {};
        }));
    return graph;
}

Result<std::string, NixFailure> Nix::eval_json(const std::filesystem::path& file, const char* attr,
                                               const std::string& request) const {
    auto argv = std::vector<std::string>{"nix-instantiate", "--eval", "--strict", "--json"};
    auto rest = expression_args(m_settings, file, attr, request);
    argv.insert(argv.end(), rest.begin(), rest.end());
    TRY_ASSIGN(auto run, run_nix(std::move(argv), "evaluate", m_settings.timeout));
    return std::move(run.out);
}

Result<void, NixFailure> Nix::build_keep_going(const std::filesystem::path& file, const char* attr,
                                               const std::string& request) const {
    auto argv = std::vector<std::string>{"nix-build", "--no-out-link", "--keep-going", "--timeout",
                                         std::to_string(m_settings.timeout.count())};
    auto rest = expression_args(m_settings, file, attr, request);
    argv.insert(argv.end(), rest.begin(), rest.end());
    auto run = run_nix(std::move(argv), "build", std::chrono::seconds(0));
    if (!run && run.error().kind == NixFailure::Kind::not_runnable) {
        return unexpected(run.error());
    }
    return {}; // some packages failing to build is expected; the caller checks validity
}

Result<std::vector<std::string>, NixFailure>
Nix::invalid_paths(const std::vector<std::string>& paths) const {
    std::vector<std::string> invalid;
    TRY(run_nix_on_paths({"nix-store", "--check-validity", "--print-invalid"}, paths,
                         "check validity", m_settings.timeout,
                         [&](const std::string& out) -> Result<void, NixFailure> {
                             for (const auto path : split_nonempty(out)) {
                                 invalid.emplace_back(path);
                             }
                             return {};
                         }));
    return invalid;
}

Result<std::vector<StorePathInfo>> parse_validity_registration(std::string_view text) {
    std::vector<std::string_view> lines;
    while (!text.empty()) {
        const auto nl = text.find('\n');
        lines.push_back(text.substr(0, nl));
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    }
    std::vector<StorePathInfo> out;
    std::size_t i = 0;
    const auto number = [](std::string_view s, std::uint64_t& v) {
        if (s.empty() || s.size() > 19 ||
            s.find_first_not_of("0123456789") != std::string_view::npos) {
            return false;
        }
        v = std::stoull(std::string(s));
        return true;
    };
    while (i < lines.size()) {
        if (lines[i].empty()) {
            ++i;
            continue;
        }
        if (i + 4 >= lines.size()) {
            return fail("parse nix-store --dump-db output failed: truncated entry for \"" +
                        std::string(lines[i]) + "\"");
        }
        StorePathInfo info;
        info.path = std::string(lines[i]);
        std::uint64_t count = 0;
        if (!number(lines[i + 2], info.nar_size) || !number(lines[i + 4], count) ||
            i + 5 + count > lines.size()) {
            return fail("parse nix-store --dump-db output failed: bad entry for \"" + info.path +
                        "\"");
        }
        for (std::uint64_t r = 0; r < count; ++r) {
            info.references.emplace_back(lines[i + 5 + r]);
        }
        i += 5 + count;
        out.push_back(std::move(info));
    }
    return out;
}

} // namespace nixery
