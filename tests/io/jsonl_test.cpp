#include "io/jsonl.h"

#include <fstream>

#include "test_util.h"
#include "util/error.h"

namespace pcm {
namespace {

void write_raw(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

TEST(Jsonl, ReadsRowsAndSkipsBlankLines) {
  test::TempDir dir;
  write_raw(dir.file("a.jsonl"), "{\"a\":1}\n\n{\"a\":2}\n");
  auto rows = read_jsonl(dir.file("a.jsonl"));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1]["a"], 2);
}

TEST(Jsonl, TornTailIsSkippedAndCutBeforeAppending) {
  test::TempDir dir;
  std::string path = dir.file("a.jsonl");
  write_raw(path, "{\"a\":1}\n{\"a\":");
  EXPECT_EQ(read_jsonl(path).size(), 1u);
  EXPECT_THROW(read_jsonl(path, /*strict_tail=*/true), Error);
  {
    JsonlAppender out(path);
    out.append({{"a", 3}});
  }
  auto rows = read_jsonl(path, true);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1]["a"], 3);
}

TEST(Jsonl, MalformedLineNamesFileAndLine) {
  test::TempDir dir;
  write_raw(dir.file("bad.jsonl"), "{\"a\":1}\n{oops}\n");
  try {
    read_jsonl(dir.file("bad.jsonl"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jsonl:2"), std::string::npos) << e.what();
  }
}

// A row whose field has another type than the reader takes (a hand-edited metrics file: "step": "x") names the file
// and line, not only nlohmann's "type must be number".
TEST(Jsonl, FieldOfTheWrongTypeNamesFileAndLine) {
  test::TempDir dir;
  write_raw(dir.file("metrics.jsonl"), "{\"step\":1}\n{\"step\":\"x\"}\n");
  try {
    for_each_jsonl(dir.file("metrics.jsonl"), [](const nlohmann::json& row, int64_t) { (void)row.value("step", int64_t{0}); });
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("metrics.jsonl:2: unexpected value"), std::string::npos) << e.what();
  }
}

// An ifstream over a directory failed with "basic_filebuf::underflow error reading the file: Is a directory".
TEST(Jsonl, ADirectoryNamesThePath) {
  test::TempDir dir;
  const std::string message = test::error_of([&] { read_jsonl(dir.path()); });
  EXPECT_NE(message.find(dir.path() + ": cannot read: Is a directory"), std::string::npos) << message;
}

TEST(Jsonl, AppenderCreatesParentsAndReplacesInvalidUtf8) {
  test::TempDir dir;
  std::string path = dir.file("x/y/out.jsonl");
  {
    JsonlAppender out(path);
    out.append({{"text", std::string("ok\xff")}});
  }
  auto rows = read_jsonl(path);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["text"].get<std::string>(), "ok\xEF\xBF\xBD");
}

}  // namespace
}  // namespace pcm
