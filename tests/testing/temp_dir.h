// A fresh directory under $TMPDIR (or /tmp), removed with its contents when
// the object is destroyed.
#ifndef ERASER_TESTS_TESTING_TEMP_DIR_H_
#define ERASER_TESTS_TESTING_TEMP_DIR_H_

#include <string>

namespace eraser::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name.
  std::string Child(const std::string& name) const;

 private:
  std::string path_;
};

// Reads or writes a whole file; aborts the process on failure.
std::string ReadFileOrDie(const std::string& path);
void WriteFileOrDie(const std::string& path, const std::string& bytes);

// The concatenated contents of every regular file under `dir`, in the
// directory iterator's order (tests search it for bytes that must be gone).
std::string AllFileBytes(const std::string& dir);

}  // namespace eraser::testing

#endif  // ERASER_TESTS_TESTING_TEMP_DIR_H_
