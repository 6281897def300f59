// CSV datasets: a file with a header row, as spreadsheets and databases
// export them (RFC 4180: fields separated by one delimiter, optionally
// quoted with '"', a quote inside a quoted field doubled, quoted fields may
// hold delimiters and line breaks; CRLF or LF line ends).
//
// Column kinds are decided from the data: a column whose every value is a
// finite number is numeric; any other value makes it categorical (strings,
// TRUE/FALSE). Missing values are errors, never guessed: an empty field, or
// one of NA, N/A, NaN, null, NULL, None, ?, in any column. Labels are always
// class names (the label column's distinct values, sorted as numbers when
// they all are numbers, else as text). The owner column, when named, holds
// non-negative integer owner ids.
//
// Every error names the file, the line and the column. Nothing is returned
// unless the whole file is valid.
#ifndef ERASER_DATASETS_CSV_H_
#define ERASER_DATASETS_CSV_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "eraser/common/statusor.h"
#include "eraser/datasets/dataset.h"

namespace eraser::datasets {

// A CSV file parsed into text fields, nothing interpreted yet.
struct CsvTable {
  std::string path;  // for messages
  char delimiter = ',';
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;  // each header.size() fields
  std::vector<std::size_t> lines;  // 1-based line each row starts on
};

// Parses CSV text. `delimiter` 0 detects it: the one of ',', ';' and tab
// that occurs most often in the header line outside quotes (',' when none
// does). kInvalidArgument, naming `path` and the line, for an empty file, a
// header without a column or with an empty or repeated name, a row with
// another number of fields than the header (a ragged row), an unterminated
// quote, a stray quote inside an unquoted field, or bytes that are not
// UTF-8. A trailing line break (or several) at the end is allowed.
StatusOr<CsvTable> ParseCsv(std::string_view text, const std::string& path,
                            char delimiter = 0);
// Reads and parses a file; kNotFound if it cannot be read.
StatusOr<CsvTable> ReadCsv(const std::string& path, char delimiter = 0);

struct CsvOptions {
  // The label column; empty: the last column.
  std::string label_column;
  // The owner column; empty: none (owners are assigned by the partition).
  std::string owner_column;
  // Columns that are neither features nor label nor owner (ids, dates).
  std::vector<std::string> ignore_columns;
  // Feature columns one-hot encoded even though their values are numbers
  // (codes such as a travel mode 1..4).
  std::vector<std::string> categorical_columns;
  // ',', ';' or '\t'; 0 detects it (see ParseCsv).
  char delimiter = 0;
};

// Builds a dataset from a training table and a test table with the same
// header: fits the encoding (vocabularies over both tables, standardisation
// over the training table only) and encodes both. Owners come from the
// owner column when it is named. kInvalidArgument naming the file, line and
// column for a missing or malformed value, an unknown column name, or
// headers that differ.
StatusOr<Dataset> EncodeCsvTables(const CsvTable& train, const CsvTable& test,
                                  const CsvOptions& options);

// Splits a table's rows into a training table and a test table: a seeded
// random `test_fraction` of the rows (at least one, leaving at least one)
// go to the test table; both keep file order. With a `group_column` (the
// owner column), whole groups are drawn until the fraction is reached, so
// that an owner's rows are all on one side. kInvalidArgument for a
// fraction outside (0, 1), fewer than two rows (or groups), or an unknown
// column.
Status SplitCsvTable(const CsvTable& table, double test_fraction, uint64_t seed,
                     const std::string& group_column, CsvTable* train,
                     CsvTable* test);

// Which of n items go to the test side: a seeded random `test_fraction` of
// them (at least one, leaving at least one), drawn by whole groups when
// `groups` (one key per item) is not empty. kInvalidArgument for a fraction
// outside (0, 1) or fewer than two items or groups.
StatusOr<std::vector<bool>> ChooseTestItems(
    std::size_t n, const std::vector<std::string>& groups, double test_fraction,
    uint64_t seed);

// "," ";" "\t" (or "tab") -> the character; kInvalidArgument otherwise.
StatusOr<char> ParseDelimiter(std::string_view text);

}  // namespace eraser::datasets

#endif  // ERASER_DATASETS_CSV_H_
