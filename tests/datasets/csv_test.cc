// The CSV reader and encoder: RFC 4180 parsing, delimiters, column kinds,
// the stored encoding, owners, splits, and every bad input named by file,
// line and column.
#include "eraser/datasets/csv.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <set>

#include "eraser/datasets/spec.h"
#include "testing/temp_dir.h"

namespace eraser::datasets {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<float> Row(const Split& split, std::size_t i) {
  std::vector<float> out(split.feature_count());
  split.Decode(i, out.data());
  return out;
}

StatusOr<Dataset> Encode(const std::string& train, const std::string& test,
                         const CsvOptions& options = {}) {
  ASSIGN_OR_RETURN(CsvTable a, ParseCsv(train, "train.csv", options.delimiter));
  ASSIGN_OR_RETURN(CsvTable b, ParseCsv(test, "test.csv", options.delimiter));
  return EncodeCsvTables(a, b, options);
}

TEST(CsvParse, HeaderRowsAndLines) {
  StatusOr<CsvTable> t = ParseCsv("a,b,c\n1,2,3\r\n4,5,6", "x.csv");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->delimiter, ',');
  EXPECT_THAT(t->header, ElementsAre("a", "b", "c"));
  ASSERT_EQ(t->rows.size(), 2u);
  EXPECT_THAT(t->rows[1], ElementsAre("4", "5", "6"));
  EXPECT_THAT(t->lines, ElementsAre(2u, 3u));
}

TEST(CsvParse, QuotingPerRfc4180) {
  // Quoted delimiters, doubled quotes, a line break inside a field, an
  // empty quoted field, a quoted header, and trailing line breaks.
  StatusOr<CsvTable> t = ParseCsv(
      "\"name\",\"note\",y\n"
      "\"Smith, J\",\"said \"\"hi\"\"\",1\n"
      "\"two\nlines\",\"\",0\n"
      "plain,x,1\n\n\n",
      "q.csv");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_THAT(t->header, ElementsAre("name", "note", "y"));
  ASSERT_EQ(t->rows.size(), 3u);
  EXPECT_THAT(t->rows[0], ElementsAre("Smith, J", "said \"hi\"", "1"));
  EXPECT_THAT(t->rows[1], ElementsAre("two\nlines", "", "0"));
  // Line numbers count the break inside the quoted field.
  EXPECT_THAT(t->lines, ElementsAre(2u, 3u, 5u));
}

TEST(CsvParse, EachDelimiterIsDetectedOrGiven) {
  for (char d : {',', ';', '\t'}) {
    std::string text = "a,b;c";  // the detected one must win the count
    text = std::string("x") + d + "y" + d + "z\n1" + d + "2" + d + "3\n";
    StatusOr<CsvTable> t = ParseCsv(text, "d.csv");
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_EQ(t->delimiter, d);
    EXPECT_THAT(t->header, ElementsAre("x", "y", "z"));
    StatusOr<CsvTable> given = ParseCsv(text, "d.csv", d);
    ASSERT_TRUE(given.ok());
    EXPECT_THAT(given->rows[0], ElementsAre("1", "2", "3"));
  }
  // A semicolon file whose numbers use decimal commas stays one per field.
  StatusOr<CsvTable> t = ParseCsv("p;q;r\n1,5;2,5;x\n", "eu.csv");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->delimiter, ';');
  EXPECT_THAT(t->rows[0], ElementsAre("1,5", "2,5", "x"));
  EXPECT_EQ(ParseCsv("a|b\n1|2\n", "p.csv", '|').status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(*ParseDelimiter("tab"), '\t');
  EXPECT_EQ(*ParseDelimiter(";"), ';');
  EXPECT_EQ(ParseDelimiter("|").status().code(), StatusCode::kInvalidArgument);
}

TEST(CsvParse, BareCarriageReturnLineEndsAreNamed) {
  StatusOr<CsvTable> t = ParseCsv("a,b\r1,2\r3,4\r", "mac.csv");
  EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(t.status().message(),
              HasSubstr("mac.csv ends its lines with a bare carriage return"));
  // A CR at the very end only ends the last line.
  EXPECT_THAT(ParseCsv("a,b\r", "one.csv").status().message(),
              ::testing::Not(HasSubstr("carriage return")));
}

TEST(CsvParse, ByteOrderMarkIsSkipped) {
  StatusOr<CsvTable> t = ParseCsv(
      "\xef\xbb\xbf"
      "a,b\n1,2\n",
      "bom.csv");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->header[0], "a");
}

struct BadCase {
  const char* text;
  const char* message;
};

TEST(CsvParse, MalformedFilesAreNamedWithTheLine) {
  const std::vector<BadCase> cases = {
      {"", "bad.csv is empty"},
      {"\n\n", "bad.csv is empty"},
      {"a,b\n", "bad.csv has no rows"},
      {"a,b\n1,2\n3\n", "bad.csv:3: a row of 1 fields; the header has 2"},
      {"a,b\n1,2,3\n", "bad.csv:2: a row of 3 fields"},
      {"a,b\n1,2\n\n3,4\n", "bad.csv:3: a row of 1 fields"},
      {"a,b\n\"1,2\n", "bad.csv:2: a quoted field is never closed"},
      {"a,b\n\"1\"x,2\n", "bad.csv:2: field 1: text after a closing quote"},
      {"a,b\n1,2\"3\n", "bad.csv:2: field 2: a quote inside an unquoted field"},
      {"a,a\n1,2\n", "bad.csv:1: column 'a' appears twice"},
      {"a,,c\n1,2,3\n", "bad.csv:1: a column of the header has no name"},
      {"abc\n1\n", "bad.csv:1: the header has one column"},
      {"a,b\n1,\xff\n", "bad.csv:2: bytes that are not UTF-8"},
      {"a,b\n1,\xc3\n", "bad.csv:2: bytes that are not UTF-8"},
      {"a,b\n1,\xc0\xaf\n", "bad.csv:2: bytes that are not UTF-8"},
  };
  for (const BadCase& c : cases) {
    StatusOr<CsvTable> t = ParseCsv(c.text, "bad.csv");
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(t.status().message(), HasSubstr(c.message)) << c.text;
  }
  // Valid multi-byte UTF-8 is data.
  StatusOr<CsvTable> t = ParseCsv("city,y\nZ\xc3\xbcrich,1\n", "u.csv");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->rows[0][0], "Z\xc3\xbcrich");
}

TEST(CsvEncode, NumericColumnsAreStandardisedWithTrainingStatistics) {
  StatusOr<Dataset> d = Encode("x,y\n1,a\n3,b\n5,a\n", "x,y\n7,b\n");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->train.shape, (std::vector<uint32_t>{1}));
  EXPECT_EQ(d->train.type, FeatureType::kFloat32);
  const ColumnEncoding& x = d->encoding->columns()[0];
  EXPECT_EQ(x.role, ColumnEncoding::Role::kNumeric);
  EXPECT_DOUBLE_EQ(x.mean, 3.0);  // the test row's 7 is not in the mean
  EXPECT_DOUBLE_EQ(x.scale, std::sqrt(8.0 / 3.0));
  EXPECT_FLOAT_EQ(Row(d->train, 0)[0], static_cast<float>(-2 / x.scale));
  EXPECT_FLOAT_EQ(Row(d->test, 0)[0], static_cast<float>(4 / x.scale));
  // A constant column keeps scale 1.
  StatusOr<Dataset> c = Encode("x,y\n2,a\n2,b\n", "x,y\n2,a\n");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->encoding->columns()[0].scale, 1.0);
}

TEST(CsvEncode, CategoricalColumnsAndStringLabels) {
  StatusOr<Dataset> d = Encode(
      "color,big,n,kind\nred,TRUE,1,cat\nblue,FALSE,2,dog\nred,TRUE,3,cat\n",
      "color,big,n,kind\ngreen,FALSE,4,bird\n");
  ASSERT_TRUE(d.ok()) << d.status();
  const TabularEncoding& e = *d->encoding;
  // The vocabulary covers both splits; categories sorted.
  EXPECT_THAT(e.columns()[0].categories, ElementsAre("blue", "green", "red"));
  EXPECT_EQ(e.columns()[1].role, ColumnEncoding::Role::kCategorical);
  EXPECT_THAT(e.columns()[1].categories, ElementsAre("FALSE", "TRUE"));
  EXPECT_EQ(e.columns()[3].role, ColumnEncoding::Role::kLabel);
  EXPECT_EQ(e.feature_count(), 3u + 2u + 1u);
  EXPECT_THAT(e.FeatureNames(),
              ElementsAre("color=blue", "color=green", "color=red", "big=FALSE",
                          "big=TRUE", "n"));
  EXPECT_THAT(d->class_names, ElementsAre("bird", "cat", "dog"));
  EXPECT_EQ(d->classes, 3u);
  EXPECT_THAT(d->train.labels, ElementsAre(1u, 2u, 1u));
  EXPECT_THAT(d->test.labels, ElementsAre(0u));
  const std::vector<float> row = Row(d->train, 1);  // blue, FALSE
  EXPECT_THAT(std::vector<float>(row.begin(), row.begin() + 5),
              ElementsAre(1, 0, 0, 1, 0));
  EXPECT_TRUE(d->notes.empty());
}

// One text value makes a column of numbers categorical, as documented; the
// loader says so, since serving then refuses every number it has not seen.
TEST(CsvEncode, NumbersReadAsCategoriesBecauseOfOneValueAreNoted) {
  StatusOr<Dataset> d =
      Encode("x,v,y\n1,a,a\n2,b,b\n3k,c,a\n", "x,v,y\n4,d,a\n");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->encoding->columns()[0].role, ColumnEncoding::Role::kCategorical);
  ASSERT_EQ(d->notes.size(), 1u);
  EXPECT_EQ(d->notes[0],
            "column 'x' is read as 4 categories, although 3 of its 4 values "
            "are numbers: '3k' (train.csv:4) is not a finite number in range "
            "(fix it, or name "
            "the column in --categorical-columns to keep it categorical)");
  // Named categorical, it is not noted.
  CsvOptions options;
  options.categorical_columns = {"x"};
  d = Encode("x,v,y\n1,a,a\n2,b,b\n3k,c,a\n", "x,v,y\n4,d,a\n", options);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(d->notes.empty());
}

TEST(CsvEncode, NumericLabelsSortAsNumbers) {
  StatusOr<Dataset> d = Encode("x,y\n1,10\n2,9\n3,2\n", "x,y\n4,10\n");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_THAT(d->class_names, ElementsAre("2", "9", "10"));
  EXPECT_THAT(d->train.labels, ElementsAre(2u, 1u, 0u));
}

TEST(CsvEncode, LabelOwnerIgnoredAndCategoricalColumnsByName) {
  CsvOptions options;
  options.label_column = "y";
  options.owner_column = "user";
  options.ignore_columns = {"date"};
  options.categorical_columns = {"mode"};
  StatusOr<Dataset> d = Encode(
      "user,date,y,mode,v\n17,2024-01-01,a,1,0.5\n4,2024-01-02,b,2,1.5\n"
      "17,2024-01-03,b,1,2.5\n",
      "user,date,y,mode,v\n9,2024-02-01,a,2,1\n", options);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_THAT(d->train.owners, ElementsAre(17u, 4u, 17u));
  // Kept for the test split too: deleting an owner erases their test rows.
  EXPECT_THAT(d->test.owners, ElementsAre(9u));
  EXPECT_EQ(d->encoding->columns()[1].role, ColumnEncoding::Role::kIgnored);
  EXPECT_EQ(d->encoding->columns()[3].role, ColumnEncoding::Role::kCategorical);
  EXPECT_EQ(d->train.feature_count(), 3u);  // mode=1, mode=2, v
  // Unknown names are refused with the list of columns.
  for (auto set : {&CsvOptions::label_column, &CsvOptions::owner_column}) {
    CsvOptions bad = options;
    bad.*set = "nope";
    Status s = Encode("user,date,y,mode,v\n1,d,a,1,1\n",
                      "user,date,y,mode,v\n1,d,a,1,1\n", bad)
                   .status();
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(s.message(), HasSubstr("'nope' is not a column (columns: "
                                       "user, date, y, mode, v)"));
  }
  CsvOptions clash = options;
  clash.owner_column = "y";
  EXPECT_EQ(Encode("user,date,y,mode,v\n1,d,a,1,1\n",
                   "user,date,y,mode,v\n1,d,a,1,1\n", clash)
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

TEST(CsvEncode, BadValuesAreNamedByFileLineAndColumn) {
  CsvOptions owners;
  owners.owner_column = "o";
  const std::vector<
      std::tuple<std::string, std::string, CsvOptions, std::string>>
      cases = {
          {"x,y\n1,a\n,b\n",
           "x,y\n1,a\n",
           {},
           "train.csv:3: column 'x': missing value"},
          {"x,y\n1,a\nNA,b\n",
           "x,y\n1,a\n",
           {},
           "train.csv:3: column 'x': missing value 'NA'"},
          {"x,y\n1,a\n2,?\n",
           "x,y\n1,a\n",
           {},
           "train.csv:3: column 'y': missing value '?'"},
          {"x,y\n1,a\n2,b\n",
           "x,y\n1,\n",
           {},
           "test.csv:2: column 'y': missing value"},
          {"x,o,y\n1,5,a\n2,-3,b\n", "x,o,y\n1,5,a\n", owners,
           "train.csv:3: column 'o': owner id '-3' is not an integer in [0, "
           "2^63)"},
          {"x,o,y\n1,5,a\n2,u7,b\n", "x,o,y\n1,5,a\n", owners, "owner id 'u7'"},
          {"x,y\n1,a\n2,a\n",
           "x,y\n1,a\n",
           {},
           "has 1 distinct values; a classifier needs 2"},
          {"x,y\n1,a\n2,b\n",
           "x,z\n1,a\n",
           {},
           "header differs from train.csv's: it has no column 'y'"},
          {"o,y\n1,a\n2,b\n", "o,y\n1,a\n", owners, "no feature column"},
      };
  for (const auto& [train, test, options, message] : cases) {
    Status s = Encode(train, test, options).status();
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << train;
    EXPECT_THAT(s.message(), HasSubstr(message)) << train;
  }
}

TEST(CsvEncode, OwnerIdsAreBelow2To63) {
  CsvOptions options;
  options.owner_column = "o";
  StatusOr<Dataset> d = Encode("x,o,y\n1,9223372036854775807,a\n2,0,b\n",
                               "x,o,y\n1,5,a\n", options);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_THAT(d->train.owners, ElementsAre(9223372036854775807u, 0u));
  d = Encode("x,o,y\n1,9223372036854775808,a\n2,0,b\n", "x,o,y\n1,5,a\n",
             options);
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(d.status().message(),
              HasSubstr("owner id '9223372036854775808' is not an integer in "
                        "[0, 2^63)"));
}

TEST(CsvEncode, RecordsEncodeLikeRows) {
  StatusOr<Dataset> d =
      Encode("color,big,n,kind\nred,TRUE,1.0,cat\nblue,FALSE,2,dog\n",
             "color,big,n,kind\nred,FALSE,4,cat\n");
  ASSERT_TRUE(d.ok()) << d.status();
  const TabularEncoding& e = *d->encoding;
  StatusOr<std::vector<float>> r = e.EncodeRecord(
      {{"color", "red"}, {"big", "FALSE"}, {"n", "4"}, {"kind", "cat"}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, Row(d->test, 0));
  // JSON clients write true for TRUE; the label may be left out.
  StatusOr<std::vector<float>> json_like =
      e.EncodeRecord({{"color", "red"}, {"big", "false"}, {"n", "4"}});
  ASSERT_TRUE(json_like.ok()) << json_like.status();
  EXPECT_EQ(*json_like, *r);
  const std::vector<std::pair<std::map<std::string, std::string>, std::string>>
      bad = {
          {{{"color", "red"}, {"big", "TRUE"}}, "missing column 'n'"},
          {{{"color", "pink"}, {"big", "TRUE"}, {"n", "1"}},
           "column 'color': unseen category 'pink'"},
          {{{"color", "red"}, {"big", "TRUE"}, {"n", "many"}},
           "column 'n': 'many' is not a number"},
          {{{"color", "red"}, {"big", "TRUE"}, {"n", "1e999"}},
           "'1e999' is not a number"},
          {{{"color", "red"}, {"big", "TRUE"}, {"n", "1"}, {"size", "L"}},
           "unknown column 'size'"},
          // A carriage return printed raw hid the message on a terminal.
          {{{"color", "red"}, {"big", "TRUE"}, {"n", "6\r"}},
           "column 'n': '6\\r' is not a number"},
          {{{"color", std::string(100, 'x') + "\x01"},
            {"big", "TRUE"},
            {"n", "1"}},
           "unseen category '" + std::string(64, 'x') + "...'"},
          // Cut before a character, not inside it.
          {{{"color", std::string(63, 'x') + "\xC3\xA9tt"},
            {"big", "TRUE"},
            {"n", "1"}},
           "unseen category '" + std::string(63, 'x') + "...'"},
      };
  for (const auto& [record, message] : bad) {
    StatusOr<std::vector<float>> out = e.EncodeRecord(record);
    EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument) << message;
    EXPECT_THAT(out.status().message(), HasSubstr(message));
  }
}

TEST(CsvEncode, EncodingSurvivesJson) {
  StatusOr<Dataset> d = Encode("c,x,y\nb,1,u\na,2,v\n", "c,x,y\nb,3,u\n");
  ASSERT_TRUE(d.ok());
  const std::string json = d->encoding->ToJson();
  StatusOr<TabularEncoding> back = TabularEncoding::FromJson(json);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->ToJson(), json);
  EXPECT_EQ(back->feature_count(), d->encoding->feature_count());
  EXPECT_EQ(TabularEncoding::FromJson("{").status().code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(TabularEncoding::FromJson(R"({"columns": [{"name": "x"}]})")
                .status()
                .code(),
            StatusCode::kDataLoss);
}

TEST(ParseNumberTest, FiniteNumbersOnly) {
  double v = 0;
  for (const char* good : {"1", "-2.5", "+3", " 4 ", "1e3", ".5", "0"}) {
    EXPECT_TRUE(ParseNumber(good, &v)) << good;
  }
  EXPECT_TRUE(ParseNumber("1e3", &v) && v == 1000);
  for (const char* bad : {"", "-", "+", "+-1", "nan", "inf", "-inf", "1e999",
                          "0x10", "1,5", "TRUE", "3 4", "1.2.3"}) {
    EXPECT_FALSE(ParseNumber(bad, &v)) << bad;
  }
}

TEST(CsvSplit, SeededFractionKeepsFileOrder) {
  std::string text = "x,y\n";
  for (int i = 0; i < 100; ++i) {
    text += std::to_string(i) + "," + (i % 2 ? "a" : "b") + "\n";
  }
  StatusOr<CsvTable> t = ParseCsv(text, "s.csv");
  ASSERT_TRUE(t.ok());
  CsvTable train, test, train2, test2;
  ASSERT_TRUE(SplitCsvTable(*t, 0.2, 7, "", &train, &test).ok());
  EXPECT_EQ(train.rows.size(), 80u);
  EXPECT_EQ(test.rows.size(), 20u);
  EXPECT_TRUE(std::is_sorted(train.lines.begin(), train.lines.end()));
  ASSERT_TRUE(SplitCsvTable(*t, 0.2, 7, "", &train2, &test2).ok());
  EXPECT_EQ(test.lines, test2.lines);  // same seed, same split
  ASSERT_TRUE(SplitCsvTable(*t, 0.2, 8, "", &train2, &test2).ok());
  EXPECT_NE(test.lines, test2.lines);
  EXPECT_EQ(SplitCsvTable(*t, 1.0, 7, "", &train, &test).code(),
            StatusCode::kInvalidArgument);
}

TEST(CsvSplit, OwnersStayOnOneSide) {
  std::string text = "o,x,y\n";
  for (int i = 0; i < 90; ++i) {
    text += std::to_string(i / 3) + "," + std::to_string(i) + ",a\n";
  }
  StatusOr<CsvTable> t = ParseCsv(text, "g.csv");
  ASSERT_TRUE(t.ok());
  CsvTable train, test;
  ASSERT_TRUE(SplitCsvTable(*t, 0.2, 3, "o", &train, &test).ok());
  EXPECT_EQ(test.rows.size(), 18u);  // six owners of three rows
  std::set<std::string> train_owners;
  for (const auto& row : train.rows) train_owners.insert(row[0]);
  for (const auto& row : test.rows) EXPECT_EQ(train_owners.count(row[0]), 0u);
}

TEST(CsvLoad, FilesThroughTheSpec) {
  testing::TempDir dir;
  testing::WriteFileOrDie(dir.Child("all.csv"),
                          "a;b;label\n1;x;yes\n2;y;no\n3;x;yes\n4;y;no\n"
                          "5;x;yes\n");
  testing::WriteFileOrDie(dir.Child("test.csv"), "a;b;label\n6;y;no\n");
  StatusOr<DatasetSpec> spec = ParseDatasetSpec("csv:" + dir.Child("all.csv"));
  ASSERT_TRUE(spec.ok());
  LoadOptions options;
  StatusOr<Dataset> split = LoadDataset(*spec, options);
  ASSERT_TRUE(split.ok()) << split.status();
  EXPECT_EQ(split->train.size() + split->test.size(), 5u);
  EXPECT_EQ(split->test.size(), 1u);  // 20% of 5
  options.test = *ParseDatasetSpec("csv:" + dir.Child("test.csv"));
  StatusOr<Dataset> given = LoadDataset(*spec, options);
  ASSERT_TRUE(given.ok()) << given.status();
  EXPECT_EQ(given->train.size(), 5u);
  EXPECT_EQ(given->test.size(), 1u);
  EXPECT_THAT(given->class_names, ElementsAre("no", "yes"));
  options.test_fraction = 0.5;
  EXPECT_EQ(LoadDataset(*spec, options).status().code(),
            StatusCode::kInvalidArgument);  // both
  StatusOr<Dataset> missing =
      LoadDataset(*ParseDatasetSpec("csv:" + dir.Child("none.csv")), {});
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("none.csv"));
  StatusOr<Dataset> directory =
      LoadDataset(*ParseDatasetSpec("csv:" + dir.path()), {});
  EXPECT_EQ(directory.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(directory.status().message(),
              HasSubstr("is a directory, not a CSV file"));
}

// A test file whose header differs says how.
TEST(CsvEncode, ADifferentTestHeaderIsNamed) {
  const std::pair<const char*, const char*> cases[] = {
      {"x,z,y\n1,2,a\n", "it has no column 'v'"},
      {"x,v,w,y\n1,2,3,a\n", "its column 'w' is not in the training file"},
      {"v,x,y\n1,2,a\n", "its column 1 is 'v', the training file's is 'x'"}};
  for (const auto& [test, what] : cases) {
    StatusOr<Dataset> d = Encode("x,v,y\n1,2,a\n3,4,b\n", test);
    EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument) << test;
    EXPECT_THAT(d.status().message(), HasSubstr(what)) << test;
  }
}

TEST(CsvEncode, AnUnknownColumnListsTwentyColumnsOfAWideFile) {
  std::string header, row;
  for (int i = 0; i < 30; ++i) {
    header += "c" + std::to_string(i) + ",";
    row += "1,";
  }
  CsvOptions options;
  options.label_column = "nope";
  StatusOr<Dataset> d = Encode(header + "y\n" + row + "a\n",
                               header + "y\n" + row + "b\n", options);
  EXPECT_THAT(d.status().message(), HasSubstr("c18, c19, ... (31 in all))"));
}

}  // namespace
}  // namespace eraser::datasets
