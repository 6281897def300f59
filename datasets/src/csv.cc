// The CSV reader (RFC 4180) and the encoding of CSV tables into datasets.
#include "eraser/datasets/csv.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <set>
#include <sstream>

#include "eraser/common/random.h"

namespace eraser::datasets {
namespace {

using Role = ColumnEncoding::Role;

constexpr uint64_t kSplitTag = 0x7e57;

// Values that stand for "no value" in common exports; never data.
bool IsMissingMarker(std::string_view v) {
  static const std::set<std::string_view> kMarkers = {
      "", "NA", "N/A", "NaN", "nan", "null", "NULL", "None", "?"};
  return kMarkers.count(v) > 0;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

Status Bad(const std::string& path, std::size_t line, const std::string& why) {
  return InvalidArgumentError(path + ":" + std::to_string(line) + ": " + why);
}

// The line of the first byte that is not part of valid UTF-8, or 0.
std::size_t FirstInvalidUtf8Line(std::string_view text) {
  std::size_t line = 1;
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') ++line;
    std::size_t len = 0;
    uint32_t min = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      len = 2, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4, min = 0x10000;
    } else {
      return line;
    }
    if (i + len > text.size()) return line;
    uint32_t cp = c & (0xff >> (len + 1));
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xc0) != 0x80) return line;
      cp = (cp << 6) | (cc & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid.
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return line;
    }
    i += len;
  }
  return 0;
}

char DetectDelimiter(std::string_view text) {
  std::size_t counts[3] = {0, 0, 0};
  const char kCandidates[3] = {',', ';', '\t'};
  bool quoted = false;
  for (char c : text) {
    if (c == '"') quoted = !quoted;
    if (!quoted && c == '\n') break;
    for (int k = 0; k < 3; ++k) counts[k] += !quoted && c == kCandidates[k];
  }
  int best = 0;
  for (int k = 1; k < 3; ++k) {
    if (counts[k] > counts[best]) best = k;
  }
  return kCandidates[best];
}

// Splits text into records of fields (RFC 4180).
class Parser {
 public:
  Parser(std::string_view text, const std::string& path, char delimiter)
      : text_(text), path_(path), delimiter_(delimiter) {}

  // The next record into *fields; false at the end. *line is the line the
  // record starts on.
  StatusOr<bool> Next(std::vector<std::string>* fields, std::size_t* line) {
    // Blank lines at the very end are allowed; anywhere else a blank line
    // is a record of one empty field.
    std::size_t probe = pos_;
    while (probe < text_.size() &&
           (text_[probe] == '\n' || text_[probe] == '\r')) {
      ++probe;
    }
    if (probe == text_.size()) return false;
    fields->clear();
    *line = line_;
    std::string field;
    while (true) {
      field_index_ = fields->size();
      if (pos_ < text_.size() && text_[pos_] == '"') {
        RETURN_IF_ERROR(Quoted(&field));
      } else {
        RETURN_IF_ERROR(Unquoted(&field));
      }
      fields->push_back(std::move(field));
      field.clear();
      if (pos_ >= text_.size()) return true;
      const char c = text_[pos_++];
      if (c == delimiter_) continue;
      if (c == '\r' && pos_ < text_.size() && text_[pos_] == '\n') ++pos_;
      ++line_;
      return true;
    }
  }

 private:
  Status Quoted(std::string* field) {
    const std::size_t start_line = line_;
    ++pos_;  // the opening quote
    while (true) {
      if (pos_ >= text_.size()) {
        return Bad(path_, start_line, "a quoted field is never closed");
      }
      const char c = text_[pos_++];
      if (c == '"') {
        if (pos_ < text_.size() && text_[pos_] == '"') {
          field->push_back('"');
          ++pos_;
          continue;
        }
        if (pos_ < text_.size() && text_[pos_] != delimiter_ &&
            text_[pos_] != '\n' && text_[pos_] != '\r') {
          return Bad(path_, line_,
                     "field " + std::to_string(field_index_ + 1) +
                         ": text after a closing quote");
        }
        return OkStatus();
      }
      if (c == '\n') ++line_;
      field->push_back(c);
    }
  }

  Status Unquoted(std::string* field) {
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == delimiter_ || c == '\n') break;
      if (c == '\r' && (pos_ + 1 == text_.size() || text_[pos_ + 1] == '\n')) {
        break;
      }
      if (c == '"') {
        return Bad(path_, line_,
                   "field " + std::to_string(field_index_ + 1) +
                       ": a quote inside an unquoted field (quote the field "
                       "and double the quote)");
      }
      field->push_back(c);
      ++pos_;
    }
    return OkStatus();
  }

  std::string_view text_;
  const std::string& path_;
  const char delimiter_;
  std::size_t pos_ = 0;
  std::size_t line_ = 1;
  std::size_t field_index_ = 0;  // of the field being read, in its record
};

// Columns resolved from the options against a header.
struct Roles {
  std::vector<Role> of;  // per column; features start as kNumeric
  std::vector<bool> forced_categorical;
  std::size_t label = 0;
  long owner = -1;
};

StatusOr<long> ColumnIndex(const CsvTable& t, const std::string& name,
                           const char* option) {
  auto it = std::find(t.header.begin(), t.header.end(), name);
  if (it != t.header.end()) return it - t.header.begin();
  // A wide file's columns are not all listed: the first 20 say enough.
  constexpr std::size_t kListed = 20;
  std::string names;
  for (std::size_t i = 0; i < t.header.size() && i < kListed; ++i) {
    names += (names.empty() ? "" : ", ") + t.header[i];
  }
  if (t.header.size() > kListed) {
    names += ", ... (" + std::to_string(t.header.size()) + " in all)";
  }
  return InvalidArgumentError(t.path + ": " + option + " '" + name +
                              "' is not a column (columns: " + names + ")");
}

StatusOr<Roles> ResolveRoles(const CsvTable& t, const CsvOptions& options) {
  Roles r;
  r.of.assign(t.header.size(), Role::kNumeric);
  for (const std::string& name : options.ignore_columns) {
    ASSIGN_OR_RETURN(long i, ColumnIndex(t, name, "--ignore-columns"));
    r.of[i] = Role::kIgnored;
  }
  if (options.label_column.empty()) {
    r.label = t.header.size() - 1;
  } else {
    ASSIGN_OR_RETURN(long i,
                     ColumnIndex(t, options.label_column, "--label-column"));
    r.label = static_cast<std::size_t>(i);
  }
  if (r.of[r.label] == Role::kIgnored) {
    return InvalidArgumentError(t.path + ": the label column '" +
                                t.header[r.label] + "' is also ignored");
  }
  r.of[r.label] = Role::kLabel;
  r.forced_categorical.assign(t.header.size(), false);
  for (const std::string& name : options.categorical_columns) {
    ASSIGN_OR_RETURN(long i, ColumnIndex(t, name, "--categorical-columns"));
    if (r.of[i] != Role::kNumeric) {
      return InvalidArgumentError(t.path + ": the categorical column '" + name +
                                  "' is also the label or ignored");
    }
    r.forced_categorical[i] = true;
  }
  if (!options.owner_column.empty()) {
    ASSIGN_OR_RETURN(r.owner,
                     ColumnIndex(t, options.owner_column, "--owner-column"));
    if (r.of[r.owner] != Role::kNumeric || r.forced_categorical[r.owner]) {
      return InvalidArgumentError(t.path + ": the owner column '" +
                                  options.owner_column +
                                  "' is also the label, ignored or "
                                  "categorical");
    }
    r.of[r.owner] = Role::kOwner;
  }
  return r;
}

// A non-negative integer id (digits only, below 2^63).
bool ParseOwner(std::string_view text, uint64_t* out) {
  text = Trim(text);
  if (text.empty() || text.size() > 19 ||
      text.find_first_not_of("0123456789") != std::string_view::npos) {
    return false;
  }
  uint64_t v = 0;
  for (char c : text) v = v * 10 + static_cast<uint64_t>(c - '0');
  if (v > static_cast<uint64_t>(INT64_MAX)) return false;
  *out = v;
  return true;
}

// Label values sorted as numbers when all are, else as text.
std::vector<std::string> SortClassNames(std::set<std::string> values) {
  std::vector<std::string> names(values.begin(), values.end());
  std::vector<double> numbers(names.size());
  bool all_numbers = true;
  for (std::size_t i = 0; i < names.size(); ++i) {
    all_numbers = all_numbers && ParseNumber(names[i], &numbers[i]);
  }
  if (all_numbers) {
    std::vector<std::size_t> order(names.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(
        order.begin(), order.end(),
        [&](std::size_t a, std::size_t b) { return numbers[a] < numbers[b]; });
    std::vector<std::string> sorted;
    for (std::size_t i : order) sorted.push_back(names[i]);
    return sorted;
  }
  return names;
}

// Fits every column's encoding over both tables (statistics over `train`).
StatusOr<TabularEncoding> FitEncoding(const CsvTable& train,
                                      const CsvTable& test, const Roles& roles,
                                      std::vector<std::string>* class_names,
                                      std::vector<std::string>* notes) {
  const std::size_t columns = train.header.size();
  std::vector<ColumnEncoding> encodings(columns);
  std::set<std::string> labels;
  for (std::size_t c = 0; c < columns; ++c) {
    ColumnEncoding& e = encodings[c];
    e.name = train.header[c];
    e.role = roles.of[c];
    if (e.role == Role::kIgnored) continue;
    bool numeric = true;
    std::size_t numbers = 0;
    std::string first_text;  // "'12.5k' (users.csv:7)"
    std::set<std::string> values;
    for (const CsvTable* t : {&train, &test}) {
      for (std::size_t r = 0; r < t->rows.size(); ++r) {
        const std::string_view v = Trim(t->rows[r][c]);
        if (IsMissingMarker(v)) {
          return Bad(t->path, t->lines[r],
                     "column '" + e.name + "': missing value" +
                         (v.empty() ? "" : " '" + std::string(v) + "'"));
        }
        uint64_t owner = 0;
        if (e.role == Role::kOwner && !ParseOwner(v, &owner)) {
          return Bad(t->path, t->lines[r],
                     "column '" + e.name + "': owner id '" + std::string(v) +
                         "' is not an integer in [0, 2^63)");
        }
        double number = 0;
        if (ParseNumber(v, &number)) {
          ++numbers;
        } else {
          if (numeric) {
            first_text = "'" + std::string(v) + "' (" + t->path + ":" +
                         std::to_string(t->lines[r]) + ")";
          }
          numeric = false;
        }
        if (e.role != Role::kOwner) values.emplace(v);
      }
    }
    if (e.role == Role::kLabel) labels = std::move(values);
    if (e.role != Role::kNumeric) continue;
    if (!numeric || roles.forced_categorical[c]) {
      e.role = Role::kCategorical;
      e.categories.assign(values.begin(), values.end());
      const std::size_t rows = train.rows.size() + test.rows.size();
      // Mostly numbers: likely a typo that turned a numeric column into
      // one category per distinct value, which serving then refuses for
      // any number it has not seen.
      if (!roles.forced_categorical[c] && 2 * numbers >= rows) {
        notes->push_back("column '" + e.name + "' is read as " +
                         std::to_string(values.size()) +
                         " categories, although " + std::to_string(numbers) +
                         " of its " + std::to_string(rows) +
                         " values are numbers: " + first_text +
                         " is not a finite number in range (fix it, or name "
                         "the column in "
                         "--categorical-columns to keep it categorical)");
      }
      continue;
    }
    double sum = 0, squares = 0;
    for (const std::vector<std::string>& row : train.rows) {
      double v = 0;
      ParseNumber(row[c], &v);
      sum += v;
    }
    const double n = static_cast<double>(train.rows.size());
    e.mean = sum / n;
    for (const std::vector<std::string>& row : train.rows) {
      double v = 0;
      ParseNumber(row[c], &v);
      squares += (v - e.mean) * (v - e.mean);
    }
    const double sd = std::sqrt(squares / n);
    e.scale = sd > 0 && std::isfinite(sd) ? sd : 1.0;
    if (!std::isfinite(e.mean)) {
      return InvalidArgumentError(train.path + ": column '" + e.name +
                                  "' has values too large to standardise");
    }
  }
  *class_names = SortClassNames(std::move(labels));
  if (class_names->size() < 2 || class_names->size() > kMaxClasses) {
    return InvalidArgumentError(train.path + ": the label column '" +
                                train.header[roles.label] + "' has " +
                                std::to_string(class_names->size()) +
                                " distinct values; a classifier needs 2 to " +
                                std::to_string(kMaxClasses));
  }
  StatusOr<TabularEncoding> encoding = TabularEncoding::Create(encodings);
  if (!encoding.ok()) return encoding.status().WithContext(train.path);
  return encoding;
}

StatusOr<Split> EncodeTable(const CsvTable& t, const TabularEncoding& encoding,
                            const Roles& roles,
                            const std::vector<std::string>& class_names) {
  Split split;
  split.type = FeatureType::kFloat32;
  split.shape = {static_cast<uint32_t>(encoding.feature_count())};
  const std::size_t d = encoding.feature_count();
  split.features.resize(t.rows.size() * d * sizeof(float));
  std::vector<float> row(d);
  for (std::size_t r = 0; r < t.rows.size(); ++r) {
    std::size_t offset = 0;
    for (std::size_t c = 0; c < encoding.columns().size(); ++c) {
      const ColumnEncoding& e = encoding.columns()[c];
      if (e.role != Role::kNumeric && e.role != Role::kCategorical) continue;
      Status s = encoding.EncodeValue(c, t.rows[r][c], &row[offset]);
      if (!s.ok()) return Bad(t.path, t.lines[r], s.message());
      offset += e.role == Role::kNumeric ? 1 : e.categories.size();
    }
    std::memcpy(&split.features[r * d * sizeof(float)], row.data(),
                d * sizeof(float));
    const std::string_view label = Trim(t.rows[r][roles.label]);
    split.labels.push_back(static_cast<uint32_t>(
        std::find(class_names.begin(), class_names.end(), label) -
        class_names.begin()));
    if (roles.owner >= 0) {
      uint64_t owner = 0;
      ParseOwner(t.rows[r][roles.owner], &owner);
      split.owners.push_back(owner);
    }
  }
  return split;
}

}  // namespace

StatusOr<CsvTable> ParseCsv(std::string_view text, const std::string& path,
                            char delimiter) {
  if (text.size() >= 3 && text.substr(0, 3) == "\xef\xbb\xbf") {
    text.remove_prefix(3);  // the byte-order mark spreadsheets write
  }
  if (text.find_first_not_of("\r\n") == std::string_view::npos) {
    return InvalidArgumentError(path + " is empty");
  }
  if (const std::size_t line = FirstInvalidUtf8Line(text); line > 0) {
    return Bad(path, line, "bytes that are not UTF-8 text");
  }
  // Line ends of a bare CR (classic Mac OS exports) would read as one line.
  const std::size_t first_cr = text.find('\r');
  if (first_cr != std::string_view::npos &&
      text.find('\n') == std::string_view::npos &&
      text.find_first_not_of("\r", first_cr) != std::string_view::npos) {
    return InvalidArgumentError(
        path +
        " ends its lines with a bare carriage return (CR); save it "
        "with LF or CRLF line ends");
  }
  if (delimiter != 0 && delimiter != ',' && delimiter != ';' &&
      delimiter != '\t') {
    return InvalidArgumentError("the delimiter must be ',', ';' or tab");
  }
  CsvTable table;
  table.path = path;
  table.delimiter = delimiter != 0 ? delimiter : DetectDelimiter(text);
  Parser parser(text, path, table.delimiter);
  std::vector<std::string> fields;
  std::size_t line = 0;
  ASSIGN_OR_RETURN(bool any, parser.Next(&table.header, &line));
  if (!any) return InvalidArgumentError(path + " is empty");
  std::set<std::string> names;
  for (std::string& name : table.header) {
    name = std::string(Trim(name));
    if (name.empty()) return Bad(path, 1, "a column of the header has no name");
    if (!names.insert(name).second) {
      return Bad(path, 1, "column '" + name + "' appears twice in the header");
    }
  }
  if (table.header.size() < 2) {
    return Bad(path, 1,
               "the header has one column; a dataset needs a label column "
               "and at least one feature (is the delimiter right?)");
  }
  while (true) {
    ASSIGN_OR_RETURN(bool more, parser.Next(&fields, &line));
    if (!more) break;
    if (fields.size() != table.header.size()) {
      return Bad(path, line,
                 "a row of " + std::to_string(fields.size()) +
                     " fields; the header has " +
                     std::to_string(table.header.size()));
    }
    table.rows.push_back(fields);
    table.lines.push_back(line);
  }
  if (table.rows.empty()) return InvalidArgumentError(path + " has no rows");
  return table;
}

StatusOr<CsvTable> ReadCsv(const std::string& path, char delimiter) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return InvalidArgumentError(path + " is a directory, not a CSV file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return NotFoundError("cannot read " + path);
  return ParseCsv(text.str(), path, delimiter);
}

StatusOr<Dataset> EncodeCsvTables(const CsvTable& train, const CsvTable& test,
                                  const CsvOptions& options) {
  if (train.header != test.header) {
    // Name the first difference: a column missing, extra or moved.
    std::string what;
    for (std::size_t i = 0; i < train.header.size() && what.empty(); ++i) {
      const std::string& name = train.header[i];
      if (std::find(test.header.begin(), test.header.end(), name) ==
          test.header.end()) {
        what = "it has no column '" + name + "'";
      }
    }
    for (std::size_t i = 0; i < test.header.size() && what.empty(); ++i) {
      const std::string& name = test.header[i];
      if (std::find(train.header.begin(), train.header.end(), name) ==
          train.header.end()) {
        what = "its column '" + name + "' is not in the training file";
      } else if (i >= train.header.size() || train.header[i] != name) {
        what = "its column " + std::to_string(i + 1) + " is '" + name +
               "', the training file's is '" +
               (i < train.header.size() ? train.header[i] : "") + "'";
      }
    }
    return InvalidArgumentError(test.path +
                                ": the test file's header differs from " +
                                train.path + "'s: " + what);
  }
  ASSIGN_OR_RETURN(Roles roles, ResolveRoles(train, options));
  Dataset data;
  ASSIGN_OR_RETURN(
      TabularEncoding encoding,
      FitEncoding(train, test, roles, &data.class_names, &data.notes));
  ASSIGN_OR_RETURN(data.train,
                   EncodeTable(train, encoding, roles, data.class_names));
  ASSIGN_OR_RETURN(data.test,
                   EncodeTable(test, encoding, roles, data.class_names));
  data.classes = static_cast<uint32_t>(data.class_names.size());
  data.source = "csv:" + train.path;
  data.encoding = std::make_shared<const TabularEncoding>(std::move(encoding));
  RETURN_IF_ERROR(data.Validate());
  return data;
}

StatusOr<std::vector<bool>> ChooseTestItems(
    std::size_t n, const std::vector<std::string>& groups, double test_fraction,
    uint64_t seed) {
  if (!(test_fraction > 0 && test_fraction < 1)) {
    return InvalidArgumentError("the test fraction must be in (0, 1)");
  }
  // Items of one group draw together; without groups each is its own.
  std::map<std::string, std::vector<std::size_t>> by_group;
  std::vector<std::vector<std::size_t>> units;
  if (groups.empty()) {
    for (std::size_t i = 0; i < n; ++i) units.push_back({i});
  } else {
    for (std::size_t i = 0; i < n; ++i) by_group[groups[i]].push_back(i);
    for (auto& [key, items] : by_group) units.push_back(std::move(items));
  }
  if (units.size() < 2) {
    return InvalidArgumentError(
        groups.empty() ? "at least two rows are needed to split off a test "
                         "set"
                       : "at least two owners are needed to split off a "
                         "test set");
  }
  const auto wanted = static_cast<std::size_t>(
      std::llround(test_fraction * static_cast<double>(n)));
  std::vector<std::size_t> order(units.size());
  std::iota(order.begin(), order.end(), 0);
  Rng(DeriveSeed(seed, {kSplitTag})).Shuffle(order.begin(), order.end());
  std::vector<bool> in_test(n, false);
  std::size_t taken = 0;
  for (std::size_t u = 0; u + 1 < order.size(); ++u) {
    if (taken >= std::max<std::size_t>(wanted, 1)) break;
    for (std::size_t i : units[order[u]]) in_test[i] = true;
    taken += units[order[u]].size();
  }
  return in_test;
}

Status SplitCsvTable(const CsvTable& table, double test_fraction, uint64_t seed,
                     const std::string& group_column, CsvTable* train,
                     CsvTable* test) {
  std::vector<std::string> groups;
  if (!group_column.empty()) {
    ASSIGN_OR_RETURN(long c,
                     ColumnIndex(table, group_column, "--owner-column"));
    for (const std::vector<std::string>& row : table.rows) {
      groups.emplace_back(Trim(row[c]));
    }
  }
  ASSIGN_OR_RETURN(
      std::vector<bool> in_test,
      ChooseTestItems(table.rows.size(), groups, test_fraction, seed));
  for (CsvTable* t : {train, test}) {
    t->path = table.path;
    t->delimiter = table.delimiter;
    t->header = table.header;
    t->rows.clear();
    t->lines.clear();
  }
  for (std::size_t r = 0; r < table.rows.size(); ++r) {
    CsvTable* t = in_test[r] ? test : train;
    t->rows.push_back(table.rows[r]);
    t->lines.push_back(table.lines[r]);
  }
  return OkStatus();
}

StatusOr<char> ParseDelimiter(std::string_view text) {
  if (text == ",") return ',';
  if (text == ";") return ';';
  if (text == "\t" || text == "\\t" || text == "tab") return '\t';
  return InvalidArgumentError("--csv-delimiter must be ',', ';' or tab, not '" +
                              std::string(text) + "'");
}

}  // namespace eraser::datasets
