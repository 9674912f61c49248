// A hostile chat template (one downloaded with a model) must end in an error naming the template,
// never hang, eat memory or print a wrapped number.
#include <gtest/gtest.h>

#include <chrono>

#include "tokenizer/chat_template.h"
#include "tokenizer/jinja_interpreter.h"
#include "tokenizer/jinja_parser.h"
#include "util/error.h"

namespace pcm {
namespace {

std::string render_with(const std::string& source, jinja::Limits limits) {
  jinja::Interpreter in(jinja::parse_template(source, "t.jinja"), limits);
  return in.render(jinja::DictData{});
}

std::string render(const std::string& source) { return render_with(source, jinja::Limits{}); }

std::string error_of(const std::string& source, jinja::Limits limits = {}) {
  try {
    render_with(source, limits);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

::testing::AssertionResult has(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << text << "' lacks '" << part << "'";
}

TEST(JinjaLimits, WidthsPastTheOutputLimitAreTheLimitsError) {
  // indent(10000000000) grew memory to 15 GB: the pad was built before any size check.
  EXPECT_TRUE(has(error_of("{{ 'a\\nb' | indent(10000000000) }}"), "t.jinja:1: the template produced a string longer than"));
  EXPECT_TRUE(has(error_of("{{ [1, 2] | tojson(indent=10000000000) }}"), "longer than"));
  // Strings never written to the output are bounded too (a small limit keeps the test cheap).
  jinja::Limits small;
  small.max_output = 1000;
  EXPECT_TRUE(has(error_of("{% set x = ('a\\n' * 100) | indent(50) %}ok", small), "longer than 1000 bytes"));
  EXPECT_TRUE(has(error_of("{% set x = [[1, 2], [3, 4]] | tojson(indent=400) %}ok", small), "longer than 1000 bytes"));
  EXPECT_EQ(render_with("{{ 'a\\nb' | indent(3) }}|{{ 'a\\nb' | indent(-2) }}", small), "a\n   b|a\nb");
}

TEST(JinjaLimits, NestedLoopsWithEmptyBodiesCountSteps) {
  // Each iteration is a step even when its body runs no statement (range x range ran for ever).
  jinja::Limits few;
  few.max_steps = 100'000;
  EXPECT_TRUE(has(error_of("{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}x", few),
                  "exceeded 100000 evaluation steps"));
  EXPECT_EQ(render_with("{% for a in range(100) %}{% for b in range(100) %}{% endfor %}{% endfor %}x", few), "x");
  // The audit's template with the real limits: a clear error naming the template within seconds.
  const auto t0 = std::chrono::steady_clock::now();
  try {
    ChatTemplate::from_source("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}x",
                              "hostile.jinja", "<s>", "</s>")
        .render(json::array(), false);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_TRUE(has(e.what(), "hostile.jinja:1: the template exceeded"));
  }
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 60.0);
}

TEST(JinjaLimits, IntAndRoundNeverPrintGarbage) {
  // NaN and numbers past int64 printed -9223372036854775808.
  EXPECT_EQ(render("{{ 'nan' | float | int }}|{{ 'nan' | float | int(7) }}|{{ '42.5' | int }}|{{ 2.9 | int }}"), "0|7|42|2");
  EXPECT_EQ(render("{{ -9.2e18 | int }}|{{ ' 12 ' | int }}|{{ 'x' | int }}"), "-9200000000000000000|12|0");
  EXPECT_TRUE(has(error_of("{{ 1e300 | int }}"), "t.jinja:1: cannot convert float 1e+300 to a 64-bit integer"));
  EXPECT_TRUE(has(error_of("{{ '1e300' | int }}"), "cannot convert float 1e+300"));
  EXPECT_TRUE(has(error_of("{{ '%d' % ('nan' | float) }}"), "cannot convert float NaN to integer"));
  EXPECT_EQ(render("{{ '%d' % 2.5 }}"), "2");
  // round(1.5, 1000000) printed nan: Python gives the number back, and 0.0 far left of the point.
  EXPECT_EQ(render("{{ 1.5 | round(1000000) }}|{{ 1.5 | round(-1000000) }}|{{ 1e300 | round(100) }}"), "1.5|0.0|1e+300");
  EXPECT_EQ(render("{{ 1.25 | round(1, 'floor') }}|{{ 1.21 | round(1, 'ceil') }}"), "1.2|1.3");
}

}  // namespace
}  // namespace pcm
