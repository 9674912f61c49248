#include "util/json.h"

#include <gtest/gtest.h>

#include <cmath>

#include "util/error.h"

using pcm::json;

TEST(Json, AcceptsBareInfinityAsTransformersWritesIt) {
  json j = pcm::parse_json(R"({"time_step_limit": [0.0, Infinity], "s": "Infinity inside a string"})", "config.json");
  EXPECT_TRUE(std::isinf(pcm::json_to_double(j["time_step_limit"][1], "time_step_limit")));
  EXPECT_EQ(j["s"].get<std::string>(), "Infinity inside a string");
}

TEST(Json, AcceptsTaggedFloatObject) {
  json j = pcm::parse_json(R"({"v": {"__float__": "Infinity"}, "n": -Infinity})", "x.json");
  EXPECT_TRUE(std::isinf(pcm::json_to_double(j["v"], "v")));
  EXPECT_LT(pcm::json_to_double(j["n"], "n"), 0);
}

TEST(Json, MalformedNamesTheFile) {
  try {
    pcm::parse_json("{\"a\": ", "broken/config.json");
    FAIL();
  } catch (const pcm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("broken/config.json"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("malformed JSON"), std::string::npos);
  }
}

TEST(Json, WrongTypeNamesTheField) {
  json j = pcm::parse_json(R"({"hidden_size": "big"})", "c.json");
  try {
    pcm::json_int_or(j, "hidden_size", 0);
    FAIL();
  } catch (const pcm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("hidden_size"), std::string::npos);
  }
}
