#include "cmd/args.hpp"

#include <cstdio>

namespace nixery {

std::optional<std::string> ParsedArgs::value(std::string_view name) const {
    const auto found = options.find(name);
    if (found == options.end()) {
        return std::nullopt;
    }
    return found->second;
}

int usage_error(const Usage& usage, std::string_view message) {
    std::fprintf(stderr, "nixery %.*s: %.*s\n%.*s", static_cast<int>(usage.command.size()),
                 usage.command.data(), static_cast<int>(message.size()), message.data(),
                 static_cast<int>(usage.text.size()), usage.text.data());
    return k_usage_status;
}

Result<ParsedArgs, int> parse_args(const Usage& usage, std::span<const OptionSpec> options,
                                   Positionals positionals, const std::vector<std::string>& args) {
    ParsedArgs parsed;
    const auto quoted = [](std::string_view a) { return "\"" + std::string(a) + "\""; };
    for (std::size_t i = 0; i < args.size(); ++i) {
        const auto& a = args[i];
        if (a == "--help" || a == "-h") {
            std::fwrite(usage.text.data(), 1, usage.text.size(), stdout);
            return unexpected(0);
        }
        if (a.size() > 1 && a[0] == '-') {
            const OptionSpec* spec = nullptr;
            for (const auto& o : options) {
                if (a == o.name || (!o.alias.empty() && a == o.alias)) {
                    spec = &o;
                }
            }
            if (spec == nullptr) {
                return unexpected(usage_error(usage, "unknown option " + quoted(a)));
            }
            const std::string name(spec->name);
            if (spec->takes == Takes::nothing) {
                parsed.options[name];
                continue;
            }
            if (i + 1 >= args.size()) {
                const auto what = spec->value_is.empty() ? "a value" : spec->value_is;
                return unexpected(usage_error(usage, a + " needs " + std::string(what)));
            }
            const auto& value = args[++i];
            if (const auto earlier = parsed.value(name)) {
                return unexpected(usage_error(usage, name + " is given twice (" + quoted(*earlier) +
                                                         " and " + quoted(value) +
                                                         "): give it once"));
            }
            parsed.options[name] = value;
            continue;
        }
        if (positionals == Positionals::none) {
            return unexpected(usage_error(usage, "unexpected argument " + quoted(a)));
        }
        parsed.positionals.push_back(a);
    }
    return parsed;
}

} // namespace nixery
