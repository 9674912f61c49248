// safetensors: round trip, and a clear error for every kind of corrupt file.
#include "io/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "test_util.h"
#include "util/error.h"

namespace pcm {
namespace {

// Writes an 8-byte length, the header text, then `data_bytes` bytes of data.
std::string write_raw(const test::TempDir& dir, const std::string& header, size_t data_bytes,
                      int64_t declared_len = -1) {
  std::string path = dir.file("m.safetensors");
  std::ofstream f(path, std::ios::binary);
  uint64_t len = declared_len >= 0 ? static_cast<uint64_t>(declared_len) : header.size();
  f.write(reinterpret_cast<const char*>(&len), 8);
  f << header;
  f << std::string(data_bytes, '\x01');
  return path;
}

void expect_error(const std::string& path, const std::string& fragment) {
  try {
    SafetensorsFile f(path);
    FAIL() << "no error, expected: " << fragment;
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(fragment), std::string::npos) << msg;
    EXPECT_NE(msg.find("m.safetensors"), std::string::npos) << "message should name the file: " << msg;
  }
}

TEST(Safetensors, RoundTrip) {
  test::TempDir dir;
  std::vector<float> a = {1, 2, 3, 4, 5, 6};
  std::vector<uint16_t> b = {f32_to_bf16(1.5f), f32_to_bf16(-2.0f)};
  write_safetensors(dir.file("m.safetensors"),
                    {{"a", DType::F32, {2, 3}, a.data()}, {"b", DType::BF16, {2}, b.data()}}, {{"k", "v"}});
  SafetensorsFile f(dir.file("m.safetensors"));
  EXPECT_EQ(f.get("a").shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(tensor_to_f32(f.get("a")), a);
  EXPECT_EQ(tensor_to_f32(f.get("b")), (std::vector<float>{1.5f, -2.0f}));
  EXPECT_EQ(f.metadata().at("k"), "v");
}

TEST(Safetensors, TooShortForHeaderLength) {
  test::TempDir dir;
  std::ofstream(dir.file("m.safetensors")) << "abc";
  expect_error(dir.file("m.safetensors"), "too short");
}

TEST(Safetensors, HeaderLengthPastEndOfFile) {
  test::TempDir dir;
  expect_error(write_raw(dir, "{}", 0, 1000), "runs past the end");
}

TEST(Safetensors, MalformedHeaderJson) {
  test::TempDir dir;
  expect_error(write_raw(dir, R"({"a": {"dtype": "F32", )", 0), "malformed JSON");
}

TEST(Safetensors, UnknownDtype) {
  test::TempDir dir;
  expect_error(write_raw(dir, R"({"w": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 2]}})", 2),
               "unknown dtype 'Q4'");
}

TEST(Safetensors, ShapeDisagreesWithByteRange) {
  test::TempDir dir;
  expect_error(write_raw(dir, R"({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 16]}})", 16),
               "needs 24 bytes but data_offsets give 16");
}

TEST(Safetensors, TruncatedData) {
  test::TempDir dir;
  expect_error(write_raw(dir, R"({"w": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]}})", 20),
               "truncated file?");
}

TEST(Safetensors, OverlappingTensors) {
  test::TempDir dir;
  expect_error(write_raw(dir,
                         R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},)"
                         R"( "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}})",
                         24),
               "overlap");
}

TEST(Safetensors, NegativeShapeAndBadOffsets) {
  test::TempDir dir;
  expect_error(write_raw(dir, R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 4), "bad shape");
  expect_error(write_raw(dir, R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [4]}})", 4),
               "bad data_offsets");
}

TEST(Safetensors, MissingTensorIsNamed) {
  test::TempDir dir;
  std::vector<float> a = {1};
  write_safetensors(dir.file("m.safetensors"), {{"a", DType::F32, {1}, a.data()}});
  SafetensorsFile f(dir.file("m.safetensors"));
  try {
    f.get("lm_head.weight");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing tensor 'lm_head.weight'"), std::string::npos);
  }
}

}  // namespace
}  // namespace pcm
