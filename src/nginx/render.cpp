#include "nginx/render.hpp"

#include "util/files.hpp"

#include <pwd.h>
#include <unistd.h>

namespace nixery {

bool nginx_plain_argument(std::string_view value, bool spaces) {
    return !value.empty() &&
           value.find_first_of(spaces ? ";{}#\"'\\$\r\n\t" : ";{}#\"'\\$\r\n\t ") ==
               std::string_view::npos;
}

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
            name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == std::string::npos;
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
    const auto timeout = config.request_timeout().count();
    const bool limited = config.manifest_rate > 0;
    // nginx refuses "burst=0"; no burst is what 0 asks for.
    const std::string burst = config.manifest_burst > 0
                                  ? " burst=" + std::to_string(config.manifest_burst) + " nodelay"
                                  : "";
    return {
        {"SOCKET", config.socket().string()},
        {"STORAGE_PATH", config.storage_path.string()},
        {"STATE_DIR", config.state_dir.string()},
        {"PORT", std::to_string(config.port)},
        {"FASTCGI_TIMEOUT", std::to_string(timeout)},
        {"MANIFEST_LIMIT_ZONE",
         limited ? "limit_req_zone $binary_remote_addr zone=nixery_manifests:10m rate=" +
                       std::to_string(config.manifest_rate) + "r/s;"
                 : "# (no rate limit of manifest requests: NIXERY_MANIFEST_RATE=0)"},
        {"MANIFEST_LIMIT",
         // Refusals at info, below the error logs' levels (warn for `nixery
         // run`, error by default): a client over its rate would otherwise
         // write a line there per request; the access log has its 429s.
         limited ? "limit_req zone=nixery_manifests" + burst +
                       ";\n    limit_req_status 429;\n    limit_req_log_level info;"
                 : "# (not limited)"},
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

namespace {

// A directory the configuration names (alias, root, pid, logs).
Result<void> check_nginx_dir(const char* name, const std::filesystem::path& dir) {
    if (!nginx_plain_argument(dir.string())) {
        return fail(std::string(name) + "=\"" + dir.string() +
                    "\" has a character nginx's configuration cannot hold (a blank, ';', '{', "
                    "'}', '#', a quote, a backslash or '$'): choose a directory without one");
    }
    return {};
}

// nginx_values() plus the blob location (or none) that locations.conf.in
// includes, for the local and the production configuration alike.
Result<std::map<std::string, std::string>> location_values(const Config& config) {
    if (config.storage == StorageKind::filesystem) {
        TRY(check_nginx_dir("STORAGE_PATH", config.storage_path));
    }
    auto values = nginx_values(config);
    TRY_ASSIGN(const auto storage_in,
               read_file(config.data.nginx_dir / "storage-location.conf.in"));
    TRY_ASSIGN(values["STORAGE_LOCATION"], storage_location(config, storage_in));
    return values;
}

// What the redirect from plain HTTP adds to the host name: the port of
// "[ADDR:]PORT" unless it is HTTPS's own.
std::string https_port_suffix(const std::string& listen) {
    const auto colon = listen.rfind(':');
    const auto port = colon == std::string::npos ? listen : listen.substr(colon + 1);
    const bool number = !port.empty() && port.find_first_not_of("0123456789") == std::string::npos;
    return number && port != "443" ? ":" + port : "";
}

} // namespace

Result<std::filesystem::path> write_local_nginx_config(const Config& config) {
    TRY(check_nginx_dir("NIXERY_STATE_DIR", config.state_dir));
    TRY_ASSIGN(auto values, location_values(config));
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

Result<std::string> render_production_nginx_config(const Config& config,
                                                   const ProductionSite& site) {
    TRY_ASSIGN(auto values, location_values(config));
    values["SOCKET"] = site.socket;
    TRY_ASSIGN(const auto locations_in, read_file(config.data.nginx_dir / "locations.conf.in"));
    TRY_ASSIGN(const auto server_in, read_file(config.data.nginx_dir / "nixery.conf.in"));
    TRY_ASSIGN(const auto locations, render_template(locations_in, values));
    std::string indented;
    std::size_t pos = 0;
    while (pos < locations.size()) {
        auto end = locations.find('\n', pos);
        end = end == std::string::npos ? locations.size() : end + 1;
        const auto line = std::string_view(locations).substr(pos, end - pos);
        indented += (line == "\n" ? "" : "    ") + std::string(line);
        pos = end;
    }
    while (!indented.empty() && indented.back() == '\n') {
        indented.pop_back();
    }
    values["LOCATIONS"] = indented;
    values["CACHE_DIR"] = site.cache_dir;
    values["ACCESS_LOG"] = site.access_log == "off" ? "off" : site.access_log + " nixery_combined";
    values["HTTPS_PORT_SUFFIX"] = https_port_suffix(site.https_listen);
    values["SERVER_NAME"] = site.server_name;
    values["HTTPS_LISTEN"] = site.https_listen;
    values["HTTP_LISTEN"] = site.http_listen;
    values["TLS_CERTIFICATE"] = site.certificate;
    values["TLS_CERTIFICATE_KEY"] = site.certificate_key;
    const bool directive = site.http2 == Http2Syntax::directive;
    values["HTTPS_LISTEN_OPTIONS"] = directive ? "ssl" : "ssl http2";
    values["HTTP2_DIRECTIVE"] =
        directive ? "http2 on;" : "# (HTTP/2: in listen; --http2-directive writes `http2 on;`)";
    values["KTLS_DIRECTIVE"] = site.ktls == KernelTls::on
                                   ? "ssl_conf_command Options KTLS;"
                                   : "# (kernel TLS: off; --ktls switches it on)";
    return render_template(server_in, values);
}

} // namespace nixery
