// libFuzzer target: the CSV reader and the tabular encoding (eraser train
// --dataset csv:FILE) on arbitrary bytes: parse, split, encode, and encode a
// record of the first row back through the fitted encoding.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string_view>

#include "eraser/datasets/csv.h"
#include "eraser/datasets/encoding.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace eraser::datasets;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  eraser::StatusOr<CsvTable> table = ParseCsv(text, "fuzz.csv");
  if (!table.ok()) return 0;
  CsvTable train, test;
  if (!SplitCsvTable(*table, 0.3, 1, "", &train, &test).ok()) return 0;
  eraser::StatusOr<Dataset> dataset =
      EncodeCsvTables(train, test, CsvOptions());
  if (!dataset.ok() || dataset->encoding == nullptr) return 0;
  std::map<std::string, std::string> record;
  for (std::size_t c = 0; c < train.header.size(); ++c) {
    record[train.header[c]] = train.rows[0][c];
  }
  dataset->encoding->EncodeRecord(record).status().IgnoreError();
  // The encoding survives its JSON form.
  TabularEncoding::FromJson(dataset->encoding->ToJson()).status().IgnoreError();
  return 0;
}
