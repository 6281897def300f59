#include "eraser/certify/record.h"

namespace eraser::certify {
namespace {

constexpr uint8_t kFormat = 1;

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// ZigZag, so small negative margins stay small.
uint64_t ZigZag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
int64_t UnZigZag(uint64_t v) {
  return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (in_.empty()) break;
      const auto byte = static_cast<uint8_t>(in_.front());
      in_.remove_prefix(1);
      v |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return v;
    }
    ok_ = false;
    return 0;
  }
  bool ok() const { return ok_; }
  bool done() const { return ok_ && in_.empty(); }

 private:
  std::string_view in_;
  bool ok_ = true;
};

// Writes an ascending list as a count and the gaps between elements.
template <typename Id>
void PutAscending(std::string* out, const std::vector<Id>& ids) {
  PutVarint(out, ids.size());
  uint64_t previous = 0;
  for (Id id : ids) {
    PutVarint(out, id.value() - previous);
    previous = id.value();
  }
}

template <typename Id>
bool ReadAscending(Reader& r, std::size_t limit, std::vector<Id>* out) {
  const uint64_t n = r.Varint();
  if (!r.ok() || n > limit) return false;
  uint64_t value = 0;
  for (uint64_t i = 0; i < n && r.ok(); ++i) {
    value += r.Varint();
    out->push_back(Id(static_cast<typename Id::rep_type>(value)));
  }
  return r.ok();
}

}  // namespace

const char* DecisionName(Decision decision) {
  switch (decision) {
    case Decision::kClean:
      return "clean";
    case Decision::kCertified:
      return "certified";
    case Decision::kWaited:
      return "waited";
    case Decision::kPartial:
      return "partial";
    case Decision::kRejected:
      return "rejected";
    case Decision::kUncertified:
      return "uncertified";
    case Decision::kPrefix:
      return "prefix";
  }
  return "unknown";
}

std::string CertificateRecord::Encode() const {
  std::string out;
  out.push_back(static_cast<char>(kFormat));
  PutVarint(&out, request_id);
  PutVarint(&out, ZigZag(ToUnixMicros(computed)));
  out.push_back(static_cast<char>(decision));
  PutVarint(&out, ZigZag(answer));
  PutVarint(&out, ZigZag(margin));
  PutAscending(&out, pending);
  PutAscending(&out, affected);
  PutVarint(&out, model_versions.size());
  for (uint64_t v : model_versions) PutVarint(&out, v);
  // Only a prefix answer has stages: records of other decisions, and those
  // written before the prefix rule existed, end here.
  if (decision == Decision::kPrefix) {
    PutVarint(&out, prefix_stages.size());
    for (int32_t s : prefix_stages) PutVarint(&out, ZigZag(s));
  }
  return out;
}

StatusOr<CertificateRecord> CertificateRecord::Decode(std::string_view bytes) {
  const Status corrupt = DataLossError("corrupt certificate record");
  if (bytes.size() < 2 || static_cast<uint8_t>(bytes[0]) != kFormat) {
    return corrupt;
  }
  Reader r(bytes.substr(1));
  CertificateRecord rec;
  rec.request_id = r.Varint();
  rec.computed = FromUnixMicros(UnZigZag(r.Varint()));
  // The decision byte is below 0x80, so it reads back as a one-byte varint.
  const uint64_t decision = r.Varint();
  if (decision < 1 || decision > kNumDecisions) return corrupt;
  rec.decision = static_cast<Decision>(decision);
  rec.answer = static_cast<int32_t>(UnZigZag(r.Varint()));
  rec.margin = static_cast<int32_t>(UnZigZag(r.Varint()));
  // Every element takes at least one byte: bounds lists by the input size.
  if (!ReadAscending(r, bytes.size(), &rec.pending) ||
      !ReadAscending(r, bytes.size(), &rec.affected)) {
    return corrupt;
  }
  const uint64_t versions = r.Varint();
  if (!r.ok() || versions > bytes.size()) return corrupt;
  for (uint64_t i = 0; i < versions; ++i)
    rec.model_versions.push_back(r.Varint());
  if (rec.decision == Decision::kPrefix) {
    const uint64_t stages = r.Varint();
    if (!r.ok() || stages > bytes.size()) return corrupt;
    for (uint64_t i = 0; i < stages; ++i) {
      rec.prefix_stages.push_back(static_cast<int32_t>(UnZigZag(r.Varint())));
    }
  }
  if (!r.done()) return corrupt;
  return rec;
}

}  // namespace eraser::certify
