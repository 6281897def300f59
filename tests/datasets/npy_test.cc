// The .npy reader: files written by numpy.save itself, every accepted dtype
// and rank, and every malformed file refused with a clear message.
#include "eraser/datasets/npy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "eraser/datasets/spec.h"
#include "testing/temp_dir.h"

namespace eraser::datasets {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A .npy file as numpy writes it: magic, version, header length, the dict
// padded so that the data starts at a multiple of 64.
std::string NpyBytes(const std::string& dict, const std::string& data,
                     int major = 1) {
  std::string header = dict;
  const std::size_t prefix = 6 + 2 + (major == 1 ? 2 : 4);
  while ((prefix + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY";
  out += static_cast<char>(major);
  out += '\0';
  const uint32_t n = static_cast<uint32_t>(header.size());
  out += static_cast<char>(n & 0xff);
  out += static_cast<char>((n >> 8) & 0xff);
  if (major != 1) {
    out += static_cast<char>((n >> 16) & 0xff);
    out += static_cast<char>(n >> 24);
  }
  return out + header + data;
}

std::string Dict(const std::string& descr, const std::string& shape,
                 bool fortran = false) {
  return "{'descr': '" + descr +
         "', 'fortran_order': " + (fortran ? "True" : "False") +
         ", 'shape': " + shape + ", }";
}

template <typename T>
std::string Raw(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()),
                     values.size() * sizeof(T));
}

TEST(Npy, ParsesHeaderShapeAndData) {
  StatusOr<NpyArray> a = ParseNpy(
      NpyBytes(Dict("<f4", "(2, 3)"), Raw<float>({1, 2, 3, 4, 5, 6})), "a.npy");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->dtype, NpyArray::DType::kFloat32);
  EXPECT_THAT(a->shape, ElementsAre(2u, 3u));
  EXPECT_EQ(a->elements(), 6u);
  // Version 2 headers, one-element tuples and Python 2 'L' suffixes.
  StatusOr<NpyArray> b = ParseNpy(
      NpyBytes(Dict("<i8", "(3L,)"), Raw<int64_t>({7, 8, 9}), 2), "b.npy");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_THAT(b->shape, ElementsAre(3u));
  EXPECT_EQ(b->IntegerAt(2), 9);
}

TEST(Npy, EveryAcceptedDtypeAndRank) {
  const std::string labels =
      NpyBytes(Dict("<i4", "(2,)"), Raw<int32_t>({1, 0}));
  StatusOr<NpyArray> y = ParseNpy(labels, "y.npy");
  ASSERT_TRUE(y.ok());
  struct Case {
    std::string descr;
    std::string shape;
    std::string data;
    FeatureType type;
    std::vector<uint32_t> sample_shape;
  };
  const std::vector<Case> cases = {
      {"|u1",
       "(2, 2, 2)",
       std::string("\x00\xff\x01\x02\x03\x04\x05\x06", 8),
       FeatureType::kPixel,
       {2, 2}},
      {"<f4",
       "(2, 3)",
       Raw<float>({0.5f, -1, 2, 3, 4, 5}),
       FeatureType::kFloat32,
       {3}},
      {"<f8",
       "(2, 1, 2, 1)",
       Raw<double>({0.25, 1e30, -2, 3}),
       FeatureType::kFloat32,
       {1, 2, 1}},
      {"<f8", "(2,)", Raw<double>({0.25, 4}), FeatureType::kFloat32, {1}},
  };
  for (const Case& c : cases) {
    StatusOr<NpyArray> x =
        ParseNpy(NpyBytes(Dict(c.descr, c.shape), c.data), "x.npy");
    ASSERT_TRUE(x.ok()) << c.descr << ": " << x.status();
    uint32_t max_label = 0;
    StatusOr<Split> s =
        NpySplit(*x, *y, nullptr, {"x.npy", "y.npy", ""}, &max_label);
    ASSERT_TRUE(s.ok()) << c.descr << ": " << s.status();
    EXPECT_EQ(s->type, c.type) << c.descr;
    EXPECT_EQ(s->shape, c.sample_shape) << c.descr;
    EXPECT_EQ(s->size(), 2u);
    EXPECT_EQ(max_label, 1u);
    std::vector<float> row(s->feature_count());
    s->Decode(0, row.data());
    if (c.descr == "|u1") {
      EXPECT_EQ(row[1], 1.0f);  // 255 / 255
    }
    if (c.descr == "<f8" && c.shape.size() > 5) {
      EXPECT_EQ(row[1], 1e30f);
    }
  }
  for (const char* label_type : {"|i1", "|u1", "<i2", "<u2", "<u4", "<u8"}) {
    const std::size_t width = label_type[2] == '1'   ? 1
                              : label_type[2] == '2' ? 2
                              : label_type[2] == '4' ? 4
                                                     : 8;
    std::string data(2 * width, '\0');
    data[width] = 3;  // labels 0 and 3, little-endian
    StatusOr<NpyArray> l =
        ParseNpy(NpyBytes(Dict(label_type, "(2,)"), data), "l.npy");
    ASSERT_TRUE(l.ok()) << label_type << ": " << l.status();
    StatusOr<NpyArray> x =
        ParseNpy(NpyBytes(Dict("<f4", "(2, 1)"), Raw<float>({1, 2})), "x.npy");
    uint32_t max_label = 0;
    StatusOr<Split> s = NpySplit(*x, *l, nullptr, {"x", "l", ""}, &max_label);
    ASSERT_TRUE(s.ok()) << label_type << ": " << s.status();
    EXPECT_THAT(s->labels, ElementsAre(0u, 3u));
  }
}

TEST(Npy, MalformedFilesAreRefused) {
  const std::string good =
      NpyBytes(Dict("<f4", "(2, 2)"), Raw<float>({1, 2, 3, 4}));
  struct Case {
    std::string bytes;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"", "not a .npy file (bad magic)"},
      {"PK\x03\x04 not numpy at all", "not a .npy file (bad magic)"},
      {good.substr(0, 9), "truncated .npy header"},
      {good.substr(0, 40), "truncated .npy header"},
      {good.substr(0, good.size() - 1), "truncated: 15 data bytes for 16"},
      {good + "x", "1 bytes after the array data"},
      {NpyBytes(Dict("<f4", "(2, 2)", true), Raw<float>({1, 2, 3, 4})),
       "Fortran-order arrays are not supported"},
      {NpyBytes(Dict(">f4", "(1,)"), Raw<float>({1})),
       "big-endian data ('>f4') is not supported"},
      {NpyBytes(Dict("<c8", "(1,)"), Raw<float>({1, 2})),
       "unsupported dtype '<c8'"},
      {NpyBytes(Dict("|O", "(1,)"), "x"), "unsupported dtype '|O'"},
      {NpyBytes(Dict("<U3", "(1,)"), std::string(12, 'a')),
       "unsupported dtype '<U3'"},
      {NpyBytes("{'descr': '<f4', 'shape': (1,), }", Raw<float>({1})),
       "lacks descr, fortran_order or shape"},
      {NpyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }",
                ""),
       "a dimension is not an integer"},
      {NpyBytes("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,), }",
                Raw<float>({1})),
       "fortran_order must be True or False"},
      {NpyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), "
                "'extra': 1}",
                Raw<float>({1})),
       "unknown header key 'extra'"},
      {NpyBytes(Dict("<f4", "(4294967296, 4294967296)"), ""),
       "implausibly large"},
      {std::string("\x93NUMPY\x07\x00", 8) + "xxxx",
       "unsupported .npy version 7"},
  };
  for (const Case& c : cases) {
    StatusOr<NpyArray> a = ParseNpy(c.bytes, "bad.npy");
    EXPECT_EQ(a.status().code(), StatusCode::kInvalidArgument) << c.message;
    EXPECT_THAT(a.status().message(), HasSubstr(c.message));
    EXPECT_THAT(a.status().message(), HasSubstr("bad.npy"));
  }
}

// A file that is not .npy is refused on its first bytes: an endless one
// (a device given by mistake) was read until memory ran out.
TEST(Npy, AFileThatIsNotNpyIsRefusedBeforeItIsReadWhole) {
  StatusOr<NpyArray> zero = ReadNpy("/dev/zero");
  EXPECT_EQ(zero.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(zero.status().message(),
              HasSubstr("/dev/zero is not a .npy file (bad magic)"));
}

TEST(Npy, ArraysThatDoNotFitEachOther) {
  auto parse = [](const std::string& dict, const std::string& data) {
    return std::move(ParseNpy(NpyBytes(dict, data), "a.npy")).value();
  };
  const NpyArray x = parse(Dict("<f4", "(2, 2)"), Raw<float>({1, 2, 3, 4}));
  const NpyArray y = parse(Dict("<i8", "(2,)"), Raw<int64_t>({0, 1}));
  const std::vector<std::string> names = {"X.npy", "y.npy", "o.npy"};
  uint32_t max = 0;
  struct Case {
    NpyArray x, y;
    std::optional<NpyArray> owners;
    std::string message;
  };
  const std::vector<Case> cases = {
      {x,
       parse(Dict("<i8", "(3,)"), Raw<int64_t>({0, 1, 1})),
       {},
       "y.npy: labels must be one axis of 2 values"},
      {x,
       parse(Dict("<f4", "(2,)"), Raw<float>({0, 1})),
       {},
       "labels must be integers, not float32"},
      {x,
       parse(Dict("<i8", "(2,)"), Raw<int64_t>({0, -1})),
       {},
       "label -1 of sample 1"},
      {x,
       parse(Dict("<i8", "(2,)"), Raw<int64_t>({0, 1000})),
       {},
       "label 1000 of sample 1"},
      {parse(Dict("<f4", "(2, 2)"), Raw<float>({1, NAN, 3, 4})),
       y,
       {},
       "X.npy: sample 0 holds nan, not a finite number"},
      {parse(Dict("<f8", "(2, 1)"), Raw<double>({1, 1e300})),
       y,
       {},
       "sample 1 holds 1e+300, outside the float32 range"},
      {parse(Dict("<i4", "(2, 1)"), Raw<int32_t>({1, 2})),
       y,
       {},
       "unsupported feature dtype int32"},
      {parse(Dict("<f4", "()"), Raw<float>({1})), y, {}, "is a scalar"},
      {x, y, parse(Dict("<i8", "(1,)"), Raw<int64_t>({0})),
       "o.npy: owners must be one axis of 2 integers"},
      {x, y, parse(Dict("<i8", "(2,)"), Raw<int64_t>({0, -4})),
       "owner of sample 1, -4, is not in [0, 2^63)"},
      {x, y,
       parse(Dict("<u8", "(2,)"),
             Raw<uint64_t>({uint64_t{1} << 63, (uint64_t{1} << 63) - 1})),
       "owner of sample 0, 9223372036854775808, is not in [0, 2^63)"},
  };
  for (const Case& c : cases) {
    StatusOr<Split> s =
        NpySplit(c.x, c.y, c.owners ? &*c.owners : nullptr, names, &max);
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument) << c.message;
    EXPECT_THAT(s.status().message(), HasSubstr(c.message));
  }
}

// Files written by numpy.save itself (Debian's python3-numpy, installed
// with python3-torch), loaded through a dataset spec.
TEST(Npy, FilesFromNumpyThroughTheSpec) {
  testing::TempDir dir;
  const std::string script =
      "import numpy as np, sys\n"
      "d = sys.argv[1]\n"
      "rng = np.random.default_rng(0)\n"
      "x = rng.integers(0, 256, size=(50, 4, 3), dtype=np.uint8)\n"
      "np.save(d + '/x_u8.npy', x)\n"
      "np.save(d + '/x_f4.npy', x.astype(np.float32) / 10)\n"
      "np.save(d + '/x_f8.npy', x.astype(np.float64) / 10)\n"
      "np.save(d + '/y.npy', (np.arange(50) % 3).astype(np.int64))\n"
      "np.save(d + '/y32.npy', (np.arange(50) % 3).astype(np.int32))\n"
      "np.save(d + '/o.npy', (np.arange(50) // 5).astype(np.int64))\n"
      "np.save(d + '/x_fortran.npy', "
      "np.asfortranarray(x.astype(np.float32)))\n";
  testing::WriteFileOrDie(dir.Child("make.py"), script);
  ASSERT_EQ(std::system(
                ("/usr/bin/python3 " + dir.Child("make.py") + " " + dir.path())
                    .c_str()),
            0);
  for (const char* features : {"x_u8", "x_f4", "x_f8"}) {
    for (const char* labels : {"y", "y32"}) {
      const std::string text =
          "npy:" + dir.Child(std::string(features) + ".npy") + "," +
          dir.Child(std::string(labels) + ".npy") + "," + dir.Child("o.npy");
      StatusOr<DatasetSpec> spec = ParseDatasetSpec(text);
      ASSERT_TRUE(spec.ok()) << spec.status();
      StatusOr<Dataset> d = LoadDataset(*spec, {});
      ASSERT_TRUE(d.ok()) << text << ": " << d.status();
      EXPECT_EQ(d->classes, 3u);
      EXPECT_EQ(d->train.shape, (std::vector<uint32_t>{4, 3}));
      EXPECT_EQ(d->train.size() + d->test.size(), 50u);
      EXPECT_EQ(d->test.size(), 10u);  // two of ten owners of five
      EXPECT_EQ(d->train.owners.size(), 40u);
      EXPECT_EQ(d->test.owners.size(), 10u);  // kept, for erasing them
    }
  }
  // A test set must name its owners when the training set does (a deletion
  // of an owner erases their test rows).
  LoadOptions separate;
  separate.test = *ParseDatasetSpec("npy:" + dir.Child("x_u8.npy") + "," +
                                    dir.Child("y.npy"));
  const std::string named = "npy:" + dir.Child("x_u8.npy") + "," +
                            dir.Child("y.npy") + "," + dir.Child("o.npy");
  EXPECT_THAT(
      LoadDataset(*ParseDatasetSpec(named), separate).status().message(),
      HasSubstr("does not: give its owners too"));
  separate.test = *ParseDatasetSpec(named);
  StatusOr<Dataset> both = LoadDataset(*ParseDatasetSpec(named), separate);
  ASSERT_TRUE(both.ok()) << both.status();
  EXPECT_EQ(both->test.owners.size(), 50u);
  StatusOr<NpyArray> fortran = ReadNpy(dir.Child("x_fortran.npy"));
  EXPECT_THAT(fortran.status().message(), HasSubstr("Fortran-order"));
  StatusOr<Dataset> missing =
      LoadDataset(*ParseDatasetSpec("npy:" + dir.Child("none.npy") + "," +
                                    dir.Child("y.npy")),
                  {});
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  LoadOptions csv_only;
  csv_only.csv.label_column = "y";
  EXPECT_THAT(LoadDataset(*ParseDatasetSpec("npy:" + dir.Child("x_u8.npy") +
                                            "," + dir.Child("y.npy")),
                          csv_only)
                  .status()
                  .message(),
              HasSubstr("do not apply to NumPy data"));
}

}  // namespace
}  // namespace eraser::datasets
