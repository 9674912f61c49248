// Whole-file reads and memory maps name the path in every error.
#include "util/file.h"

#include <gtest/gtest.h>

#include "test_util.h"
#include "util/json.h"

namespace pcm {
namespace {

using test::error_of;

// A directory used to read through an ifstream and fail with libstdc++'s "basic_filebuf::underflow error
// reading the file: Is a directory", naming no path (audit item 11: pcm grade --in DIR, pcm plot DIR).
TEST(ReadTextFile, ADirectoryNamesThePath) {
  test::TempDir dir;
  for (const std::string& message : {error_of([&] { read_text_file(dir.path()); }),
                                     error_of([&] { read_json_file(dir.path()); }),
                                     error_of([&] { MappedFile m(dir.path()); })}) {
    EXPECT_NE(message.find(dir.path() + ": "), std::string::npos) << message;
    EXPECT_NE(message.find("directory"), std::string::npos) << message;
  }
}

TEST(ReadTextFile, AMissingFileNamesThePath) {
  test::TempDir dir;
  const std::string message = error_of([&] { read_text_file(dir.file("absent.json")); });
  EXPECT_NE(message.find(dir.file("absent.json") + ": cannot open"), std::string::npos) << message;
}

TEST(ReadTextFile, ReadsEveryByte) {
  test::TempDir dir;
  std::string data(200000, 'x');
  data[123457] = '\0';
  write_file_atomic(dir.file("f"), data);
  EXPECT_EQ(read_text_file(dir.file("f")), data);
}

}  // namespace
}  // namespace pcm
