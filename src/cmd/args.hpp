// The arguments of a command, read one way by every command: its options
// (`--name VALUE`, or a switch that takes none), its positional arguments,
// and `--help` (`-h`), which asks for its usage. Mistakes end the command
// with exit status 2, a line naming the bad argument and the usage on
// stderr; what a value means is for the command to check (usage_error).
#pragma once

#include "util/result.hpp"

#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nixery {

// The exit status of a command given arguments it cannot take.
inline constexpr int k_usage_status = 2;

struct Usage {
    std::string_view command; // "build": messages start "nixery build: "
    std::string_view text;    // "usage: nixery build ...\n"
};

enum class Takes { value, nothing };

struct OptionSpec {
    std::string_view name; // "--output"
    Takes takes = Takes::value;
    // What a missing value is said to be ("a directory": "--output needs a
    // directory"); "a value" when empty.
    std::string_view value_is = {};
    std::string_view alias = {}; // "-o"; empty for none
};

enum class Positionals { none, any };

struct ParsedArgs {
    // The options given, by name (an alias is stored under its option's
    // name): a value, or "" for a switch.
    std::map<std::string, std::string, std::less<>> options;
    std::vector<std::string> positionals;

    bool has(std::string_view name) const { return options.find(name) != options.end(); }
    // The value of an option given; nullopt when it was not given.
    std::optional<std::string> value(std::string_view name) const;
};

// Prints "nixery COMMAND: MESSAGE" and the usage on stderr; returns
// k_usage_status, for the command to exit with.
int usage_error(const Usage& usage, std::string_view message);

// Reads `args` in order. Returns them parsed, or the status the command
// exits with: 0 after printing the usage on stdout for `--help` or `-h`
// (unless it is an option's value), 2 after usage_error for an unknown
// option, an option without its value, a value option given twice (a
// second value would silently replace the first), or a positional argument
// where the command takes none. A switch given twice is the same switch.
Result<ParsedArgs, int> parse_args(const Usage& usage, std::span<const OptionSpec> options,
                                   Positionals positionals, const std::vector<std::string>& args);

} // namespace nixery
