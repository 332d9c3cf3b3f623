#include "nginx_config.hpp"

#include "util/files.hpp"

#include <pwd.h>
#include <unistd.h>

namespace nixery {

Result<std::string> render_template(const std::string& text,
                                    const std::map<std::string, std::string>& values) {
    std::string out;
    std::size_t pos = 0;
    for (;;) {
        const auto at = text.find('@', pos);
        if (at == std::string::npos) {
            out.append(text, pos);
            return out;
        }
        const auto end = text.find('@', at + 1);
        const auto name =
            end == std::string::npos ? std::string() : text.substr(at + 1, end - at - 1);
        const bool placeholder =
            !name.empty() &&
            name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ_") == std::string::npos;
        if (!placeholder) {
            out.append(text, pos, at + 1 - pos);
            pos = at + 1;
            continue;
        }
        const auto value = values.find(name);
        if (value == values.end()) {
            return fail("render template failed: no value for @" + name + "@");
        }
        out.append(text, pos, at - pos);
        out += value->second;
        pos = end + 1;
    }
}

std::map<std::string, std::string> nginx_values(const Config& config) {
    // Each request may need several Nix calls (evaluate, build, closure)
    // plus packing; nginx must not give up before the worker does.
    const auto timeout = config.nix_timeout.count() * 6 + 600;
    return {
        {"SOCKET", config.socket().string()},
        {"STORAGE_PATH", config.storage_path.string()},
        {"STATE_DIR", config.state_dir.string()},
        {"PORT", std::to_string(config.port)},
        {"FASTCGI_TIMEOUT", std::to_string(timeout)},
    };
}

Result<std::string> storage_location(const Config& config, const std::string& template_text) {
    if (config.storage != StorageKind::filesystem) {
        // An empty alias would serve the whole filesystem; object stores
        // need no location at all.
        return std::string("# (none: blobs are served by redirects to the object store)");
    }
    return render_template(template_text, nginx_values(config));
}

Result<std::filesystem::path> write_local_nginx_config(const Config& config) {
    auto values = nginx_values(config);
    TRY_ASSIGN(const auto storage_in,
               read_file(config.data.nginx_dir / "storage-location.conf.in"));
    TRY_ASSIGN(values["STORAGE_LOCATION"], storage_location(config, storage_in));
    // As root, nginx would switch its workers to "nobody", who may not be able
    // to reach a checkout under /root; a local instance runs them as us.
    std::string user;
    if (::geteuid() == 0) {
        user = "user root;";
    }
    values["USER_DIRECTIVE"] = user;
    TRY_ASSIGN(const auto locations_in, read_file(config.data.nginx_dir / "locations.conf.in"));
    TRY_ASSIGN(const auto main_in, read_file(config.data.nginx_dir / "local.conf.in"));
    TRY_ASSIGN(const auto locations, render_template(locations_in, values));
    TRY_ASSIGN(const auto main, render_template(main_in, values));
    for (const char* dir : {"nginx-tmp/body", "nginx-tmp/fastcgi", "nginx-tmp/proxy",
                            "nginx-tmp/uwsgi", "nginx-tmp/scgi"}) {
        TRY(make_dirs(config.state_dir / dir));
    }
    const auto conf = config.state_dir / "nginx.conf";
    TRY(write_file_atomic(config.state_dir, config.state_dir / "nginx-locations.conf", locations));
    TRY(write_file_atomic(config.state_dir, conf, main));
    return conf;
}

} // namespace nixery
