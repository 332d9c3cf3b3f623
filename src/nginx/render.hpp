// Rendering the nginx configuration templates of nginx/ (@NAME@
// placeholders) for the paths of this instance: the local configuration of
// `nixery run`, and the production server blocks `nixery nginx-config`
// prints (nixery.conf.in with locations.conf.in inlined).
#pragma once

#include "config.hpp"
#include "util/result.hpp"

#include <filesystem>
#include <map>
#include <string>

namespace nixery {

// Replaces every @NAME@ in `text`; a placeholder without a value is an error.
Result<std::string> render_template(const std::string& text,
                                    const std::map<std::string, std::string>& values);

// Whether `value` can be one nginx directive argument (or, with `spaces`,
// several: server names): nothing nginx reads as syntax (';', '{', '}',
// '#', quotes, a backslash, line ends) or as a variable ('$', even quoted).
bool nginx_plain_argument(std::string_view value, bool spaces = false);

// The placeholder values for this configuration (socket, storage, timeouts).
std::map<std::string, std::string> nginx_values(const Config& config);

// The internal /_storage/ location rendered from `template_text`
// (nginx/storage-location.conf.in) for the filesystem backend; for object
// stores, which redirect, a comment instead.
Result<std::string> storage_location(const Config& config, const std::string& template_text);

// Writes nginx.conf and nginx-locations.conf for a local instance into the
// state directory; returns the path of nginx.conf.
Result<std::filesystem::path> write_local_nginx_config(const Config& config);

// How the production server block switches HTTP/2 on: in the listen
// directive (nginx 1.9.5 and newer; 1.25.1 and newer warn that it is
// deprecated), or with the `http2 on;` directive (nginx 1.25.1 and newer).
enum class Http2Syntax { listen_parameter, directive };

// Whether nginx asks OpenSSL for kernel TLS (`ssl_conf_command Options
// KTLS`, nginx 1.21.4 and newer with OpenSSL 3), so sendfile(2) also works
// over HTTPS. Off by default: older nginx refuses the directive.
enum class KernelTls { off, on };

// What a production site needs beyond the instance's configuration.
struct ProductionSite {
    std::string server_name = "_"; // nginx's catch-all name
    std::string https_listen = "443";
    std::string http_listen = "80";
    std::string certificate = "/etc/nixery/tls/fullchain.pem";
    std::string certificate_key = "/etc/nixery/tls/privkey.pem";
    std::string socket = "/run/nixery/fcgi.sock"; // where systemd/nixery.socket listens
    // nginx's cache of manifests; nginx creates it (not its parent) for its
    // user. Debian's nginx owns /var/lib/nginx.
    std::string cache_dir = "/var/lib/nginx/nixery-cache";
    // Where Debian's nginx logs; in the combined format plus $request_id.
    std::string access_log = "/var/log/nginx/access.log";
    Http2Syntax http2 = Http2Syntax::listen_parameter;
    KernelTls ktls = KernelTls::off;
};

// The production server blocks, ready for nginx's http block.
Result<std::string> render_production_nginx_config(const Config& config,
                                                   const ProductionSite& site);

} // namespace nixery
