#include "cmd/nginx_config.hpp"

#include "config.hpp"
#include "nginx/render.hpp"
#include "util/files.hpp"

#include <cstdio>
#include <map>

namespace nixery {

namespace {

constexpr const char* k_nginx_config_usage =
    "usage: nixery nginx-config [--server-name NAMES] [--listen [ADDR:]PORT]\n"
    "           [--http-listen [ADDR:]PORT] [--certificate FILE] [--certificate-key FILE]\n"
    "           [--socket PATH] [--cache-dir DIR] [--access-log FILE|off] [--http2-directive]\n"
    "           [--ktls]\n";

} // namespace

int nginx_config_command(const std::vector<std::string>& args) {
    ProductionSite site;
    const std::map<std::string, std::string*> options{{"--server-name", &site.server_name},
                                                      {"--listen", &site.https_listen},
                                                      {"--http-listen", &site.http_listen},
                                                      {"--certificate", &site.certificate},
                                                      {"--certificate-key", &site.certificate_key},
                                                      {"--socket", &site.socket},
                                                      {"--cache-dir", &site.cache_dir},
                                                      {"--access-log", &site.access_log}};
    for (std::size_t i = 0; i < args.size(); ++i) {
        if (args[i] == "--http2-directive") {
            site.http2 = Http2Syntax::directive;
            continue;
        }
        if (args[i] == "--ktls") {
            site.ktls = KernelTls::on;
            continue;
        }
        const auto option = options.find(args[i]);
        if (option == options.end() || i + 1 >= args.size()) {
            std::fprintf(stderr, "nixery nginx-config: unexpected argument \"%s\"\n%s",
                         args[i].c_str(), k_nginx_config_usage);
            return 2;
        }
        const auto& value = args[++i];
        if (!nginx_plain_argument(value, option->first == "--server-name")) {
            std::fprintf(stderr,
                         "nixery nginx-config: %s \"%s\" is empty or has characters nginx would "
                         "read as syntax\n",
                         option->first.c_str(), value.c_str());
            return 2;
        }
        *option->second = value;
    }
    auto config = load_config(current_environment(), ConfigUse::serve);
    if (!config) {
        std::fprintf(stderr, "nixery nginx-config: %s\n", config.error().message.c_str());
        return 1;
    }
    const auto text = render_production_nginx_config(*config, site);
    if (!text) {
        std::fprintf(stderr, "nixery nginx-config: %s\n", text.error().message.c_str());
        return 1;
    }
    if (auto written = write_stdout(*text); !written) {
        std::fprintf(stderr, "nixery nginx-config: %s\n", written.error().message.c_str());
        return 1;
    }
    return 0;
}

} // namespace nixery
