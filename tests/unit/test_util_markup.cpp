#include "util/markup.hpp"

#include <doctest/doctest.h>

using namespace nixery;

TEST_SUITE_BEGIN("util");

TEST_CASE("escape_markup") {
    CHECK(escape_markup("a<b>&\"c'") == "a&lt;b&gt;&amp;&quot;c&#39;");
    CHECK(escape_markup("plain/text-1.0") == "plain/text-1.0");
}

TEST_SUITE_END();
