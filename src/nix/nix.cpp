#include "nix/nix.hpp"

#include "util/log.hpp"
#include "util/subprocess.hpp"
#include "util/text.hpp"

#include <algorithm>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <unordered_set>

namespace nixery {

namespace {

constexpr std::size_t k_log_lines = 25;

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

std::vector<std::string> nix_options(const NixSettings& settings) {
    if (!settings.tarball_ttl) {
        return {};
    }
    return {"--option", "tarball-ttl", std::to_string(settings.tarball_ttl->count())};
}

std::string clean_nix_output(std::string_view text) {
    const auto plain = strip_ansi(text);
    std::string out;
    out.reserve(plain.size());
    for (std::size_t pos = 0; pos < plain.size();) {
        const auto end = std::min(plain.find('\n', pos), plain.size() - 1) + 1;
        const auto line = std::string_view(plain).substr(pos, end - pos);
        if (line.find("client-specified setting 'tarball-ttl'") == std::string_view::npos) {
            out += line;
        }
        pos = end;
    }
    return out;
}

std::string request_json(const NixRequest& request) {
    rapidjson::Document source;
    source.Parse(request.source_json.c_str(), request.source_json.size());
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

bool Evaluation::has_attribute(std::string_view attr) const {
    return std::any_of(packages.begin(), packages.end(), [&](const ResolvedPackage& p) {
        return p.attr_path.size() == 1 && p.attr_path[0] == attr;
    });
}

namespace {

Result<ProcessResult, NixFailure> run_nix(std::vector<std::string> argv, std::string operation,
                                          std::chrono::seconds timeout) {
    ProcessSpec spec;
    spec.argv = std::move(argv);
    spec.timeout = timeout;
    spec.env = {"NO_COLOR=1"};
    log::debug("running nix", {{"argv0", spec.argv[0]}, {"operation", operation}});
    auto run = run_process(spec);
    if (!run) {
        return unexpected(
            NixFailure{NixFailure::Kind::not_runnable, std::move(operation), run.error().message});
    }
    if (run->timed_out) {
        return unexpected(NixFailure{NixFailure::Kind::timed_out, std::move(operation),
                                     tail_lines(clean_nix_output(run->err_tail), k_log_lines)});
    }
    if (!run->ok()) {
        auto tail = tail_lines(clean_nix_output(run->err_tail), k_log_lines);
        if (tail.empty()) {
            tail = spec.argv[0] + " failed with " + run->describe_exit(timeout);
        }
        // No daemon to talk to (NIX_REMOTE=daemon, socket missing): a fault
        // of the server, not of the image.
        const bool no_daemon = tail.find("cannot connect to socket") != std::string::npos ||
                               tail.find("cannot connect to daemon") != std::string::npos;
        return unexpected(
            NixFailure{no_daemon ? NixFailure::Kind::not_runnable : NixFailure::Kind::failed,
                       std::move(operation), std::move(tail)});
    }
    return std::move(*run);
}

std::vector<std::string> expression_args(const NixSettings& settings,
                                         const std::filesystem::path& file, const char* attr,
                                         const std::string& request) {
    std::vector<std::string> args{file.string(), "-A", attr, "--argstr", "request", request};
    for (auto& option : nix_options(settings)) {
        args.push_back(std::move(option));
    }
    return args;
}

std::vector<std::string> image_nix_args(const NixSettings& settings, const char* attr,
                                        const std::string& request) {
    return expression_args(settings, settings.expression, attr, request);
}

Result<ResolvedPackage> parse_package(const rapidjson::Value& v, std::string name) {
    ResolvedPackage p;
    p.name = std::move(name);
    if (!v.IsObject() || !v.HasMember("out") || !v["out"].IsString()) {
        return fail("malformed package in evaluation");
    }
    p.out_path = v["out"].GetString();
    if (const auto attr = v.FindMember("attrPath"); attr != v.MemberEnd()) {
        p.attr_path = strings_of(attr->value);
    }
    return p;
}

} // namespace

Result<Evaluation, NixFailure> Nix::evaluate(const std::string& request) const {
    auto argv = std::vector<std::string>{"nix-instantiate", "--eval", "--strict", "--json"};
    auto rest = image_nix_args(m_settings, "evaluate", request);
    argv.insert(argv.end(), rest.begin(), rest.end());
    TRY_ASSIGN(auto run, run_nix(std::move(argv), "evaluate", m_settings.timeout));

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
    req.Parse(request.data(), request.size());
    if (req.HasParseError() || !req.IsObject() || !req.HasMember("packages") ||
        !req["packages"].IsArray()) {
        return bad("the request is not one of request_json");
    }
    rapidjson::Document doc;
    doc.Parse(out.data(), out.size());
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
            ev.refused.push_back(name);
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

std::string Nix::explain(const std::string& request) const {
    auto argv = std::vector<std::string>{"nix-instantiate", "--eval", "--strict", "--json"};
    auto rest = image_nix_args(m_settings, "explain", request);
    argv.insert(argv.end(), rest.begin(), rest.end());
    auto run = run_nix(std::move(argv), "evaluate", m_settings.timeout);
    if (run) {
        return "it evaluated without error this time";
    }
    return run.error().log_tail;
}

Result<void, NixFailure> Nix::realise(const std::string& request,
                                      const std::filesystem::path& out_link) const {
    const auto seconds = std::to_string(m_settings.timeout.count());
    auto argv = std::vector<std::string>{"nix-build", "--out-link", out_link.string(), "--timeout",
                                         seconds};
    auto rest = image_nix_args(m_settings, "build", request);
    argv.insert(argv.end(), rest.begin(), rest.end());
    TRY(run_nix(std::move(argv), "build", m_settings.timeout));
    return {};
}

Result<std::string, NixFailure> Nix::source_path(const std::string& request) const {
    auto argv = std::vector<std::string>{"nix-instantiate", "--eval", "--json"};
    auto rest = image_nix_args(m_settings, "source", request);
    argv.insert(argv.end(), rest.begin(), rest.end());
    TRY_ASSIGN(auto run, run_nix(std::move(argv), "fetch source", m_settings.timeout));
    rapidjson::Document doc;
    doc.Parse(run.out.c_str(), run.out.size());
    if (doc.HasParseError() || !doc.IsString()) {
        return unexpected(
            NixFailure{NixFailure::Kind::failed, "fetch source",
                       "unexpected output from nix-instantiate: " + run.out.substr(0, 200)});
    }
    return std::string(doc.GetString());
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
