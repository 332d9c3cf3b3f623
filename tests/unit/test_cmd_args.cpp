#include "cmd/args.hpp"
#include "testutil.hpp"

#include <doctest/doctest.h>
#include <unistd.h>

using namespace nixery;

namespace {

constexpr Usage k_usage{"demo", "usage: nixery demo [--output DIR] [--dry-run] NAME...\n"};
constexpr OptionSpec k_options[] = {{"--output", Takes::value, "a directory", "-o"},
                                    {"--dry-run", Takes::nothing}};

struct Outcome {
    Result<ParsedArgs, int> parsed;
    std::string out;
    std::string err;
};

Outcome parse(std::vector<std::string> args, Positionals positionals = Positionals::any) {
    Result<ParsedArgs, int> parsed = unexpected(-1);
    std::string out;
    const auto err = testutil::captured(STDERR_FILENO, [&] {
        out = testutil::captured(
            STDOUT_FILENO, [&] { parsed = parse_args(k_usage, k_options, positionals, args); });
    });
    return {std::move(parsed), out, err};
}

} // namespace

TEST_SUITE_BEGIN("cmd");

TEST_CASE("parse_args") {
    SUBCASE("options, switches and positional arguments, an alias under its option's name") {
        const auto r = parse({"a", "-o", "dir", "--dry-run", "b", "-"});
        REQUIRE(r.parsed);
        CHECK(r.parsed->value("--output") == "dir");
        CHECK(r.parsed->has("--dry-run"));
        CHECK(r.parsed->positionals == std::vector<std::string>{"a", "b", "-"});
        CHECK(r.err.empty());
        CHECK(r.out.empty());
        CHECK(!parse({}).parsed->has("--output"));
        CHECK(parse({}).parsed->value("--output") == std::nullopt);
    }
    SUBCASE("--help and -h: the usage on stdout, exit status 0") {
        for (const auto* help : {"--help", "-h"}) {
            const auto r = parse({"a", help, "--unknown"});
            REQUIRE(!r.parsed);
            CHECK(r.parsed.error() == 0);
            CHECK(r.out == k_usage.text);
            CHECK(r.err.empty());
        }
        // As an option's value it is the value.
        CHECK(parse({"--output", "--help"}).parsed->value("--output") == "--help");
    }
    SUBCASE("mistakes: exit status 2, one line naming the argument, then the usage") {
        const std::string usage(k_usage.text);
        for (const auto& [args, positionals, line] :
             std::vector<std::tuple<std::vector<std::string>, Positionals, std::string>>{
                 {{"--frobnicate"}, Positionals::any, "unknown option \"--frobnicate\""},
                 {{"-x", "a"}, Positionals::any, "unknown option \"-x\""},
                 {{"a", "--output"}, Positionals::any, "--output needs a directory"},
                 {{"stray"}, Positionals::none, "unexpected argument \"stray\""}}) {
            const auto r = parse(args, positionals);
            REQUIRE(!r.parsed);
            CHECK(r.parsed.error() == 2);
            CHECK(r.err == "nixery demo: " + line + "\n" + usage);
            CHECK(r.out.empty());
        }
    }
    SUBCASE("a value option given twice is refused, by either of its names") {
        for (const auto& args : std::vector<std::vector<std::string>>{
                 {"--output", "a", "--output", "b"}, {"-o", "a", "--output", "b"}}) {
            const auto r = parse(args);
            REQUIRE(!r.parsed);
            CHECK(r.parsed.error() == 2);
            CHECK(r.err ==
                  "nixery demo: --output is given twice (\"a\" and \"b\"): give it once\n" +
                      std::string(k_usage.text));
        }
        // A switch twice is the same switch.
        CHECK(parse({"--dry-run", "--dry-run"}).parsed);
    }
}

TEST_CASE("usage_error") {
    const auto err =
        testutil::captured(STDERR_FILENO, [] { CHECK(usage_error(k_usage, "bad \"x\"") == 2); });
    CHECK(err == "nixery demo: bad \"x\"\n" + std::string(k_usage.text));
}

TEST_SUITE_END();
