#include "storage/xml.hpp"

#include <doctest/doctest.h>

using namespace nixery;

TEST_SUITE_BEGIN("storage");

TEST_CASE("xml::elements") {
    const std::string reply = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><KeyCount>2</KeyCount>
<Contents><Key>layers/a&amp;b</Key><Size>5</Size></Contents>
<Contents><Key>layers/c</Key><Size>7</Size></Contents><IsTruncated>false</IsTruncated>
<Empty/></ListBucketResult>)";
    const auto contents = xml::elements(reply, "Contents");
    REQUIRE(contents.size() == 2);
    CHECK(xml::text(contents[0], "Key") == "layers/a&b");
    CHECK(xml::text(contents[1], "Size") == "7");
    CHECK(xml::text(reply, "Key") == "layers/a&b"); // not <KeyCount>
    CHECK(xml::text(reply, "IsTruncated") == "false");
    CHECK(xml::elements(reply, "Empty").size() == 1);
    CHECK(xml::text(reply, "Missing").empty());
}

TEST_CASE("xml::decode") {
    CHECK(xml::decode("&lt;a&gt; &quot;b&quot; &apos;c&apos; &#65;&#x42; &unknown;") ==
          "<a> \"b\" 'c' AB &unknown;");
}

TEST_SUITE_END();
