#include "eraser/datasets/encoding.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>

#include "eraser/common/ascii.h"

namespace eraser::datasets {
namespace {

// A value as an error message shows it: control characters escaped (a
// carriage return printed raw hides the message on a terminal), and cut
// at 64 bytes.
std::string Shown(std::string_view text) {
  std::size_t shown = std::min<std::size_t>(text.size(), 64);
  // Not inside a UTF-8 character: back to its first byte.
  while (shown < text.size() && shown > 0 &&
         (static_cast<unsigned char>(text[shown]) & 0xC0) == 0x80) {
    --shown;
  }
  std::string out;
  for (std::size_t i = 0; i < shown; ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (shown < text.size()) out += "...";
  return out;
}

using Role = ColumnEncoding::Role;
using nlohmann::json;

std::size_t Width(const ColumnEncoding& c) {
  if (c.role == Role::kNumeric) return 1;
  if (c.role == Role::kCategorical) return c.categories.size();
  return 0;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

bool IsBoolean(std::string_view s) {
  return EqualsIgnoringAsciiCase(s, "true") ||
         EqualsIgnoringAsciiCase(s, "false");
}

// The index of `text` in a sorted vocabulary, or -1. An exact match first;
// then a category that is the same number, or the same boolean in another
// case (JSON clients send 1 and true where the file said "1.0" and "TRUE").
long FindCategory(const std::vector<std::string>& categories,
                  std::string_view text) {
  auto it = std::lower_bound(categories.begin(), categories.end(), text);
  if (it != categories.end() && *it == text) return it - categories.begin();
  double value = 0;
  const bool numeric = ParseNumber(text, &value);
  for (std::size_t i = 0; i < categories.size(); ++i) {
    double other = 0;
    if (numeric && ParseNumber(categories[i], &other) && other == value) {
      return static_cast<long>(i);
    }
    if (IsBoolean(text) && EqualsIgnoringAsciiCase(text, categories[i])) {
      return static_cast<long>(i);
    }
  }
  return -1;
}

}  // namespace

bool ParseNumber(std::string_view text, double* out) {
  text = Trim(text);
  // from_chars takes no leading '+', which some exports write.
  if (!text.empty() && text.front() == '+') {
    text.remove_prefix(1);
    if (!text.empty() && text.front() == '-') return false;
  }
  if (text.empty()) return false;
  double v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(),
                                         v, std::chars_format::general);
  if (ec != std::errc() || end != text.data() + text.size() ||
      !std::isfinite(v)) {
    return false;
  }
  *out = v;
  return true;
}

const char* RoleName(Role role) {
  switch (role) {
    case Role::kNumeric:
      return "numeric";
    case Role::kCategorical:
      return "categorical";
    case Role::kLabel:
      return "label";
    case Role::kOwner:
      return "owner";
    case Role::kIgnored:
      return "ignored";
  }
  return "?";
}

TabularEncoding::TabularEncoding(std::vector<ColumnEncoding> columns)
    : columns_(std::move(columns)) {
  for (const ColumnEncoding& c : columns_) feature_count_ += Width(c);
}

StatusOr<TabularEncoding> TabularEncoding::Create(
    std::vector<ColumnEncoding> columns) {
  std::set<std::string> names;
  int labels = 0, owners = 0, features = 0;
  for (const ColumnEncoding& c : columns) {
    if (c.name.empty() || !names.insert(c.name).second) {
      return InvalidArgumentError(
          "column names must be distinct and not "
          "empty ('" +
          c.name + "')");
    }
    labels += c.role == Role::kLabel;
    owners += c.role == Role::kOwner;
    features += c.is_feature();
    if (c.role == Role::kNumeric &&
        !(c.scale > 0 && std::isfinite(c.scale) && std::isfinite(c.mean))) {
      return InvalidArgumentError("column '" + c.name +
                                  "' has a bad standardisation");
    }
    if (c.role == Role::kCategorical &&
        (c.categories.empty() ||
         std::adjacent_find(c.categories.begin(), c.categories.end(),
                            std::greater_equal<>()) != c.categories.end())) {
      return InvalidArgumentError("column '" + c.name +
                                  "' needs sorted, distinct categories");
    }
  }
  if (labels != 1) return InvalidArgumentError("exactly one label column");
  if (owners > 1) return InvalidArgumentError("at most one owner column");
  if (features == 0) {
    return InvalidArgumentError(
        "no feature column is left besides the "
        "label, owner and ignored columns");
  }
  return TabularEncoding(std::move(columns));
}

std::vector<std::string> TabularEncoding::FeatureNames() const {
  std::vector<std::string> names;
  for (const ColumnEncoding& c : columns_) {
    if (c.role == Role::kNumeric) names.push_back(c.name);
    if (c.role == Role::kCategorical) {
      for (const std::string& v : c.categories)
        names.push_back(c.name + "=" + v);
    }
  }
  return names;
}

Status TabularEncoding::EncodeValue(std::size_t column, std::string_view text,
                                    float* out) const {
  const ColumnEncoding& c = columns_.at(column);
  if (c.role == Role::kNumeric) {
    double v = 0;
    if (!ParseNumber(text, &v)) {
      return InvalidArgumentError("column '" + c.name + "': '" + Shown(text) +
                                  "' is not a number");
    }
    const double z = (v - c.mean) / c.scale;
    if (!(std::fabs(z) <= 3.4e38)) {
      return InvalidArgumentError("column '" + c.name + "': " + Shown(text) +
                                  " is outside the float range");
    }
    out[0] = static_cast<float>(z);
    return OkStatus();
  }
  const long index = FindCategory(c.categories, Trim(text));
  if (index < 0) {
    return InvalidArgumentError("column '" + c.name + "': unseen category '" +
                                Shown(text) + "'");
  }
  std::fill_n(out, c.categories.size(), 0.0f);
  out[index] = 1.0f;
  return OkStatus();
}

StatusOr<std::vector<float>> TabularEncoding::EncodeRecord(
    const std::map<std::string, std::string>& record) const {
  for (const auto& item : record) {
    const std::string& name = item.first;
    const bool known =
        std::any_of(columns_.begin(), columns_.end(),
                    [&](const ColumnEncoding& c) { return c.name == name; });
    if (!known) {
      return InvalidArgumentError("unknown column '" + name + "'");
    }
  }
  std::vector<float> out(feature_count_);
  std::size_t offset = 0;
  for (std::size_t i = 0; i < columns_.size(); ++i) {
    const ColumnEncoding& c = columns_[i];
    if (!c.is_feature()) continue;
    auto it = record.find(c.name);
    if (it == record.end()) {
      return InvalidArgumentError("missing column '" + c.name + "'");
    }
    RETURN_IF_ERROR(EncodeValue(i, it->second, &out[offset]));
    offset += Width(c);
  }
  return out;
}

std::string TabularEncoding::ToJson() const {
  json columns = json::array();
  for (const ColumnEncoding& c : columns_) {
    json column = {{"name", c.name}, {"role", RoleName(c.role)}};
    if (c.role == Role::kNumeric) {
      column["mean"] = c.mean;
      column["scale"] = c.scale;
    }
    if (c.role == Role::kCategorical) column["categories"] = c.categories;
    columns.push_back(std::move(column));
  }
  return json{{"columns", columns}}.dump();
}

StatusOr<TabularEncoding> TabularEncoding::FromJson(std::string_view text) {
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  const Status corrupt = DataLossError("the stored encoding is corrupt");
  if (!j.is_object() || !j.contains("columns") || !j["columns"].is_array()) {
    return corrupt;
  }
  std::vector<ColumnEncoding> columns;
  try {
    for (const json& item : j["columns"]) {
      ColumnEncoding c;
      c.name = item.at("name").get<std::string>();
      const std::string role = item.at("role").get<std::string>();
      bool found = false;
      for (Role r : {Role::kNumeric, Role::kCategorical, Role::kLabel,
                     Role::kOwner, Role::kIgnored}) {
        if (role == RoleName(r)) {
          c.role = r;
          found = true;
        }
      }
      if (!found) return corrupt;
      if (c.role == Role::kNumeric) {
        c.mean = item.at("mean").get<double>();
        c.scale = item.at("scale").get<double>();
      }
      if (c.role == Role::kCategorical) {
        c.categories = item.at("categories").get<std::vector<std::string>>();
      }
      columns.push_back(std::move(c));
    }
  } catch (const json::exception&) {
    return corrupt;
  }
  StatusOr<TabularEncoding> encoding = Create(std::move(columns));
  if (!encoding.ok()) {
    return DataLossError("the stored encoding is invalid: " +
                         encoding.status().message());
  }
  return encoding;
}

}  // namespace eraser::datasets
