// pcm tokenize as a user runs it: --text / --file / stdin, --add-special, --decode, --skip-special, errors.
#include <gtest/gtest.h>

#include "test_util.h"
#include "util/file.h"

namespace pcm {
namespace {

using test::run_pcm;
using test::testdata;

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

TEST(TokenizeCli, EncodesTextWithAndWithoutSpecialTokens) {
  std::string dir = testdata("tokenizers/mistral-v3");
  // Reference ids for "Hello world" from reference.jsonl.
  auto r = run_pcm("tokenize --model " + dir + " --text 'Hello world'");
  ASSERT_EQ(r.exit_code, 0) << r.all();
  EXPECT_EQ(first_line(r.out), "23325,2294");
  auto s = run_pcm("tokenize --model " + dir + " --text 'Hello world' --add-special");
  ASSERT_EQ(s.exit_code, 0) << s.all();
  EXPECT_EQ(first_line(s.out), "1,23325,2294");
  auto special = run_pcm("tokenize --model " + dir + " --text '</s>'");
  EXPECT_EQ(first_line(special.out), "2") << special.all();
  auto split = run_pcm("tokenize --model " + dir + " --text '</s>' --split-special");
  ASSERT_EQ(split.exit_code, 0) << split.all();
  EXPECT_NE(first_line(split.out).find(','), std::string::npos) << split.out;  // several plain tokens
}

TEST(TokenizeCli, ShowsTokens) {
  auto r = run_pcm("tokenize --model " + testdata("tokenizers/mistral-v3") + " --text 'Hello world' --show-tokens");
  ASSERT_EQ(r.exit_code, 0) << r.all();
  EXPECT_EQ(r.out, "23325\t\"\u2581Hello\"\n2294\t\"\u2581world\"\n");
}

TEST(TokenizeCli, ReadsStdinAndFiles) {
  std::string dir = testdata("tokenizers/gpt-neox");
  auto text = run_pcm("tokenize --model " + dir + " --text 'line one\nline two'");
  ASSERT_EQ(text.exit_code, 0) << text.all();
  auto in = run_pcm("tokenize --model " + dir + " --text -", "line one\nline two");
  ASSERT_EQ(in.exit_code, 0) << in.all();
  EXPECT_EQ(in.out, text.out);
  test::TempDir tmp;
  write_file_atomic(tmp.file("t.txt"), "line one\nline two");
  auto f = run_pcm("tokenize --model " + dir + " --file " + tmp.file("t.txt"));
  ASSERT_EQ(f.exit_code, 0) << f.all();
  EXPECT_EQ(f.out, text.out);
}

TEST(TokenizeCli, DecodesIds) {
  std::string dir = testdata("tokenizers/mistral-v3");
  auto r = run_pcm("tokenize --model " + dir + " --decode 1,23325,2294,2");
  ASSERT_EQ(r.exit_code, 0) << r.all();
  EXPECT_EQ(r.out, "<s> Hello world</s>\n");
  auto s = run_pcm("tokenize --model " + dir + " --decode 1,23325,2294,2 --skip-special");
  ASSERT_EQ(s.exit_code, 0) << s.all();
  EXPECT_EQ(s.out, "Hello world\n");
}

TEST(TokenizeCli, Errors) {
  std::string dir = testdata("tokenizers/mistral-v3");
  auto none = run_pcm("tokenize --model " + dir);
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.err.find("exactly one of --text, --file or --decode"), std::string::npos) << none.all();
  auto range = run_pcm("tokenize --model " + dir + " --decode 5,99999");
  EXPECT_EQ(range.exit_code, 1);
  EXPECT_NE(range.err.find("token id 99999 is out of range"), std::string::npos) << range.all();
  auto bad = run_pcm("tokenize --model " + dir + " --text -", std::string("ok\xff"));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("not valid UTF-8"), std::string::npos) << bad.all();
  auto missing = run_pcm("tokenize --model /nonexistent/dir --text hi");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("/nonexistent/dir"), std::string::npos) << missing.all();
}

}  // namespace
}  // namespace pcm
