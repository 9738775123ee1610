#include "hanul/base/mapped_file.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <string>

namespace hanul {

TEST(MappedFile, MapsWhatWasWrittenAtomically) {
  std::string path = (std::filesystem::temp_directory_path() / "hanul_test_mapped.bin").string();
  ASSERT_TRUE(write_file_atomic(path, "hello hanul").ok());
  auto f = MappedFile::open(path);
  ASSERT_TRUE(f.ok()) << f.message();
  ASSERT_EQ((*f)->size(), 11u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>((*f)->data()), 11), "hello hanul");
  std::remove(path.c_str());
}

TEST(MappedFile, MissingFileIsAClearError) {
  auto f = MappedFile::open("/nonexistent/hanul.gguf");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.message().find("/nonexistent/hanul.gguf"), std::string::npos);
}

TEST(AtomicFileWriter, UncommittedWriteLeavesNothing) {
  std::string path = (std::filesystem::temp_directory_path() / "hanul_test_uncommitted.bin").string();
  std::remove(path.c_str());
  {
    auto w = AtomicFileWriter::create(path);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->write("abc", 3).ok());
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  for (auto& e : std::filesystem::directory_iterator(std::filesystem::temp_directory_path()))
    EXPECT_EQ(e.path().filename().string().rfind("hanul_test_uncommitted.bin.tmp", 0), std::string::npos);
}

}  // namespace hanul
