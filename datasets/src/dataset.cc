#include "eraser/datasets/dataset.h"

#include <algorithm>
#include <cstring>

#include "eraser/common/hash.h"
#include "eraser/datasets/encoding.h"
#include "wire.h"

namespace eraser::datasets {
namespace {

constexpr char kSplitMagic[4] = {'E', 'R', 'S', 'P'};
constexpr uint32_t kSplitFormat = 1;
// Bounds that reject a corrupt encoding before it allocates for it.
constexpr uint32_t kMaxRank = 8;
constexpr uint64_t kMaxFeatures = uint64_t{1} << 24;

}  // namespace

const char* FeatureTypeName(FeatureType type) {
  return type == FeatureType::kPixel ? "pixel" : "float32";
}

StatusOr<FeatureType> ParseFeatureType(std::string_view name) {
  if (name == "pixel") return FeatureType::kPixel;
  if (name == "float32") return FeatureType::kFloat32;
  return InvalidArgumentError("unknown feature type '" + std::string(name) +
                              "': expected pixel or float32");
}

std::size_t FeatureTypeBytes(FeatureType type) {
  return type == FeatureType::kPixel ? 1 : 4;
}

void DecodeFeatures(FeatureType type, const uint8_t* bytes, std::size_t count,
                    float* out) {
  if (type == FeatureType::kPixel) {
    for (std::size_t i = 0; i < count; ++i) out[i] = bytes[i] / 255.0f;
  } else {
    // Stored little-endian; this code runs on little-endian hosts only
    // (x86-64 and AArch64, as Debian builds LibTorch for).
    static_assert(sizeof(float) == 4);
    std::memcpy(out, bytes, count * sizeof(float));
  }
}

std::size_t Split::feature_count() const {
  std::size_t n = shape.empty() ? 0 : 1;
  for (uint32_t d : shape) n *= d;
  return n;
}

void Split::Decode(std::size_t i, float* out) const {
  DecodeFeatures(type, row(i), feature_count(), out);
}

std::vector<float> Split::DecodeRows(std::size_t begin, std::size_t end) const {
  const std::size_t d = feature_count();
  std::vector<float> out((end - begin) * d);
  DecodeFeatures(type, row(begin), (end - begin) * d, out.data());
  return out;
}

void Split::EraseRow(std::size_t i) {
  std::fill_n(features.begin() + i * row_bytes(), row_bytes(), 0);
  labels[i] = kErasedLabel;
}

std::size_t Split::EraseOwner(uint64_t owner) {
  std::size_t erased_now = 0;
  for (std::size_t i = 0; i < owners.size(); ++i) {
    if (owners[i] != owner || erased(i)) continue;
    EraseRow(i);
    ++erased_now;
  }
  return erased_now;
}

Split Split::WithoutErased() const {
  Split out;
  out.type = type;
  out.shape = shape;
  for (std::size_t i = 0; i < size(); ++i) {
    if (erased(i)) continue;
    out.labels.push_back(labels[i]);
    if (!owners.empty()) out.owners.push_back(owners[i]);
    out.features.insert(out.features.end(), row(i), row(i) + row_bytes());
  }
  return out;
}

Status Split::CheckRowsLeft() const {
  for (std::size_t i = 0; i < size(); ++i) {
    if (!erased(i)) return OkStatus();
  }
  return FailedPreconditionError(
      "every row of the stored test split was erased by deletions of its "
      "owners: there is nothing to evaluate or replay on (the ensemble is "
      "trained and serves)");
}

Status Split::Validate() const {
  if (shape.empty() || shape.size() > kMaxRank) {
    return InvalidArgumentError("a sample's feature shape must have 1 to " +
                                std::to_string(kMaxRank) + " dimensions");
  }
  uint64_t count = 1;
  for (uint32_t d : shape) {
    if (d == 0) return InvalidArgumentError("a feature dimension is zero");
    count *= d;
    if (count > kMaxFeatures) {
      return InvalidArgumentError("more than 2^24 features per sample");
    }
  }
  if (features.size() != labels.size() * row_bytes()) {
    return InvalidArgumentError(
        "the split holds " + std::to_string(features.size()) +
        " feature bytes, not " + std::to_string(labels.size() * row_bytes()));
  }
  if (!owners.empty() && owners.size() != labels.size()) {
    return InvalidArgumentError("the split has " +
                                std::to_string(owners.size()) + " owners for " +
                                std::to_string(size()) + " samples");
  }
  return OkStatus();
}

Status Dataset::Validate() const {
  RETURN_IF_ERROR(train.Validate());
  RETURN_IF_ERROR(test.Validate());
  if (train.size() == 0) return InvalidArgumentError("no training samples");
  if (test.size() == 0) return InvalidArgumentError("no test samples");
  if (train.type != test.type || train.shape != test.shape) {
    return InvalidArgumentError(
        "the training and test splits differ in feature shape or type (" +
        ShapeString(train.shape) + " " + FeatureTypeName(train.type) +
        " against " + ShapeString(test.shape) + " " +
        FeatureTypeName(test.type) + ")");
  }
  if (classes < 2 || classes > kMaxClasses) {
    return InvalidArgumentError("a dataset needs 2 to " +
                                std::to_string(kMaxClasses) + " classes, not " +
                                std::to_string(classes));
  }
  for (const Split* split : {&train, &test}) {
    for (std::size_t i = 0; i < split->size(); ++i) {
      if (split->labels[i] >= classes) {
        return InvalidArgumentError(
            std::string(split == &train ? "training" : "test") + " sample " +
            std::to_string(i) + " has label " +
            std::to_string(split->labels[i]) + ", not below " +
            std::to_string(classes));
      }
    }
  }
  if (!class_names.empty() && class_names.size() != classes) {
    return InvalidArgumentError(
        "there are " + std::to_string(class_names.size()) +
        " class names for " + std::to_string(classes) + " classes");
  }
  if (encoding != nullptr &&
      encoding->feature_count() != train.feature_count()) {
    return InvalidArgumentError(
        "the encoding makes " + std::to_string(encoding->feature_count()) +
        " features but samples have " + std::to_string(train.feature_count()));
  }
  return OkStatus();
}

namespace {

// A split's fingerprint; without `owners`, as that of the split without
// them.
uint64_t Fingerprint(const Split& split, bool owners) {
  Fingerprinter f;
  f.UpdateU64(static_cast<uint64_t>(split.type));
  f.UpdateU64(split.shape.size());
  for (uint32_t d : split.shape) f.UpdateU64(d);
  f.UpdateU64(split.size());
  f.Update(split.features.data(), split.features.size());
  for (uint32_t label : split.labels) f.UpdateU64(label);
  f.UpdateU64(owners ? split.owners.size() : 0);
  if (owners) {
    for (uint64_t owner : split.owners) f.UpdateU64(owner);
  }
  return f.Finish();
}

}  // namespace

uint64_t SplitFingerprint(const Split& split) {
  return Fingerprint(split, /*owners=*/true);
}

uint64_t DescriptionFingerprint(const Dataset& data) {
  Fingerprinter f;
  // Without the test split's owners, which were not kept before 2026-12-06:
  // a directory built then still matches its dataset.
  f.UpdateU64(Fingerprint(data.test, /*owners=*/false));
  f.UpdateU64(data.classes);
  f.UpdateU64(data.class_names.size());
  for (const std::string& name : data.class_names) {
    f.UpdateU64(name.size());
    f.Update(name);
  }
  const std::string encoding =
      data.encoding != nullptr ? data.encoding->ToJson() : std::string();
  f.UpdateU64(encoding.size());
  f.Update(encoding);
  return f.Finish();
}

std::string ShapeString(const std::vector<uint32_t>& shape) {
  std::string out;
  for (uint32_t d : shape) {
    if (!out.empty()) out += "x";
    out += std::to_string(d);
  }
  return out;
}

StatusOr<std::vector<uint32_t>> ParseShape(std::string_view text) {
  std::vector<uint32_t> shape;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t end = std::min(text.find('x', start), text.size());
    const std::string_view item = text.substr(start, end - start);
    uint64_t v = 0;
    if (item.empty() || item.size() > 9 ||
        item.find_first_not_of("0123456789") != std::string_view::npos) {
      return InvalidArgumentError("bad feature shape '" + std::string(text) +
                                  "'");
    }
    for (char c : item) v = v * 10 + static_cast<uint64_t>(c - '0');
    if (v == 0) {
      return InvalidArgumentError("bad feature shape '" + std::string(text) +
                                  "'");
    }
    shape.push_back(static_cast<uint32_t>(v));
    start = end + 1;
  }
  return shape;
}

std::string EncodeSplit(const Split& split) {
  std::string out(kSplitMagic, sizeof(kSplitMagic));
  wire::PutU32(&out, kSplitFormat);
  wire::PutU32(&out, static_cast<uint32_t>(split.type));
  wire::PutU32(&out, static_cast<uint32_t>(split.shape.size()));
  for (uint32_t d : split.shape) wire::PutU32(&out, d);
  wire::PutU64(&out, split.size());
  wire::PutU32(&out, split.owners.empty() ? 0 : 1);
  for (uint32_t label : split.labels) wire::PutU32(&out, label);
  for (uint64_t owner : split.owners) wire::PutU64(&out, owner);
  out.append(reinterpret_cast<const char*>(split.features.data()),
             split.features.size());
  return out;
}

StatusOr<Split> DecodeSplit(std::string_view bytes) {
  const Status corrupt = DataLossError("the stored split is corrupt");
  wire::Reader in(bytes);
  if (!in.Expect(kSplitMagic, sizeof(kSplitMagic))) return corrupt;
  uint32_t format = 0, type = 0, rank = 0, has_owners = 0;
  uint64_t n = 0;
  if (!in.U32(&format) || format != kSplitFormat || !in.U32(&type) ||
      !in.U32(&rank) || rank == 0 || rank > kMaxRank) {
    return corrupt;
  }
  Split split;
  if (type != static_cast<uint32_t>(FeatureType::kPixel) &&
      type != static_cast<uint32_t>(FeatureType::kFloat32)) {
    return corrupt;
  }
  split.type = static_cast<FeatureType>(type);
  split.shape.resize(rank);
  for (uint32_t& d : split.shape) {
    if (!in.U32(&d) || d == 0) return corrupt;
  }
  if (!in.U64(&n) || !in.U32(&has_owners) || has_owners > 1) return corrupt;
  const std::size_t row = split.row_bytes();
  const std::size_t per_sample = 4 + (has_owners ? 8 : 0) + row;
  if (row == 0 || n > in.remaining() / per_sample ||
      n * per_sample != in.remaining()) {
    return corrupt;
  }
  split.labels.resize(n);
  for (uint32_t& label : split.labels) in.U32(&label);
  if (has_owners) {
    split.owners.resize(n);
    for (uint64_t& owner : split.owners) in.U64(&owner);
  }
  split.features.resize(n * row);
  if (!in.Bytes(split.features.data(), split.features.size())) return corrupt;
  if (Status s = split.Validate(); !s.ok()) return corrupt;
  return split;
}

std::vector<std::size_t> ClassCounts(const Split& split, uint32_t classes) {
  std::vector<std::size_t> counts(classes, 0);
  for (uint32_t label : split.labels) {
    if (label < classes) ++counts[label];
  }
  return counts;
}

}  // namespace eraser::datasets
