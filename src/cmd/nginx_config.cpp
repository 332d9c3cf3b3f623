#include "cmd/nginx_config.hpp"

#include "cmd/args.hpp"
#include "config.hpp"
#include "nginx/render.hpp"
#include "util/files.hpp"

#include <cstdio>
#include <map>

namespace nixery {

namespace {

constexpr Usage k_usage{
    "nginx-config",
    "usage: nixery nginx-config [--server-name NAMES] [--listen [ADDR:]PORT]\n"
    "           [--http-listen [ADDR:]PORT] [--certificate FILE] [--certificate-key FILE]\n"
    "           [--socket PATH] [--cache-dir DIR] [--access-log FILE|off] [--http2-directive]\n"
    "           [--ktls]\n"};

} // namespace

int nginx_config_command(const std::vector<std::string>& args) {
    ProductionSite site;
    const std::map<std::string_view, std::string*> values{
        {"--server-name", &site.server_name},
        {"--listen", &site.https_listen},
        {"--http-listen", &site.http_listen},
        {"--certificate", &site.certificate},
        {"--certificate-key", &site.certificate_key},
        {"--socket", &site.socket},
        {"--cache-dir", &site.cache_dir},
        {"--access-log", &site.access_log}};
    std::vector<OptionSpec> options{{"--http2-directive", Takes::nothing},
                                    {"--ktls", Takes::nothing}};
    for (const auto& v : values) {
        options.push_back({v.first, Takes::value});
    }
    const auto given = parse_args(k_usage, options, Positionals::none, args);
    if (!given) {
        return given.error();
    }
    if (given->has("--http2-directive")) {
        site.http2 = Http2Syntax::directive;
    }
    if (given->has("--ktls")) {
        site.ktls = KernelTls::on;
    }
    for (const auto& [name, field] : values) {
        const auto value = given->value(name);
        if (!value) {
            continue;
        }
        if (!nginx_plain_argument(*value, name == "--server-name")) {
            return usage_error(k_usage, std::string(name) + " \"" + *value +
                                            "\" is empty or has characters nginx would read as "
                                            "syntax");
        }
        *field = *value;
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
