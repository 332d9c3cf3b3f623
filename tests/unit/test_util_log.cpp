#include "testutil.hpp"
#include "util/log.hpp"

#include "util/text.hpp"
#include <cstdlib>
#include <doctest/doctest.h>
#include <unistd.h>

using namespace nixery;

TEST_SUITE_BEGIN("util");

TEST_CASE("log::without_userinfo") {
    CHECK(log::without_userinfo("https://user:tok@host.example/a/b.git?x=1") ==
          "https://host.example/a/b.git?x=1");
    CHECK(log::without_userinfo("https://tok@host/") == "https://host/");
    CHECK(log::without_userinfo("ssh://git@host:22/repo") == "ssh://host:22/repo");
    CHECK(log::without_userinfo("https://host/a@b") == "https://host/a@b"); // @ in the path
    CHECK(log::without_userinfo("git@github.com:org/repo.git") == "git@github.com:org/repo.git");
    CHECK(log::without_userinfo("/srv/pkgs") == "/srv/pkgs");
}

TEST_CASE("log::scrub_userinfo") {
    const std::string url = "https://user:tok@host/r.git";
    CHECK(log::scrub_userinfo("fatal: unable to access 'https://user:tok@host/r.git/': refused",
                              url) == "fatal: unable to access 'https://host/r.git/': refused");
    CHECK(log::scrub_userinfo("bad credentials user:tok", url) == "bad credentials <redacted>");
    CHECK(log::scrub_userinfo("nothing to hide", "https://host/r.git") == "nothing to hide");
}

TEST_CASE("log::redact_url") {
    CHECK(log::redact_url("https://k:s@bucket.example/o?X-Amz-Signature=abc") ==
          "https://bucket.example/o?<redacted>");
    CHECK(log::redact_url("https://bucket.example/o") == "https://bucket.example/o");
}

TEST_CASE("log::strip_userinfo") {
    CHECK(log::strip_userinfo("fetch https://ci:glpat-x@git.example/r.git failed") ==
          "fetch https://git.example/r.git failed");
    CHECK(log::strip_userinfo("'https://u:p@a/x' and ssh://git@b:22/y") ==
          "'https://a/x' and ssh://b:22/y");
    CHECK(log::strip_userinfo("mail me at a@b, see https://example.com/@user") ==
          "mail me at a@b, see https://example.com/@user");
    CHECK(log::strip_userinfo("no url") == "no url");
}

TEST_CASE("log::RequestScope") {
    CHECK(log::request_id().empty());
    {
        const log::RequestScope scope("00112233aabbccdd");
        CHECK(log::request_id() == "00112233aabbccdd");
    }
    CHECK(log::request_id().empty());
    const auto a = log::new_request_id();
    CHECK(a.size() == 16);
    CHECK(is_lower_hex(a, 16));
    CHECK(a != log::new_request_id());
}

TEST_CASE("log::write: every line is JSON, whatever bytes it is given") {
    const auto line = testutil::captured(STDERR_FILENO, [] {
        log::write(log::Level::error, "bad \xff byte",
                   {{"path", std::string("/v2/a\xff\xc3(b\x1b[31m")}});
    });
    CHECK(valid_utf8(line) == line);
    CHECK(line.find("\"msg\":\"bad \xef\xbf\xbd byte\"") != std::string::npos);
    CHECK(line.find("\"path\":\"/v2/a\xef\xbf\xbd\xef\xbf\xbd(b\\u001B[31m\"") !=
          std::string::npos);
}

TEST_SUITE_END();
