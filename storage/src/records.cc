#include "eraser/storage/records.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>

namespace eraser::storage {

std::string DeletionTarget::ToString() const {
  return (kind == Kind::kSample ? "sample:" : "owner:") + std::to_string(id);
}

StatusOr<DeletionTarget> DeletionTarget::Parse(const std::string& text) {
  const std::size_t colon = text.find(':');
  const std::string kind = text.substr(0, colon);
  DeletionTarget target;
  if (colon == std::string::npos || (kind != "sample" && kind != "owner")) {
    return InvalidArgumentError("bad deletion target '" + text +
                                "': expected sample:<id> or owner:<id>");
  }
  target.kind = kind == "sample" ? Kind::kSample : Kind::kOwner;
  const std::string digits = text.substr(colon + 1);
  if (digits.empty() || digits.size() > 20 ||
      digits.find_first_not_of("0123456789") != std::string::npos) {
    return InvalidArgumentError("bad deletion target '" + text +
                                "': the id must be a non-negative integer");
  }
  errno = 0;
  target.id = std::strtoull(digits.c_str(), nullptr, 10);
  if (errno == ERANGE) {
    return InvalidArgumentError("bad deletion target '" + text +
                                "': the id is out of range");
  }
  return target;
}

std::vector<ShardId> DeletionRecord::Shards() const {
  std::vector<ShardId> shards;
  for (const SampleLocation& s : samples) shards.push_back(s.shard);
  std::sort(shards.begin(), shards.end());
  shards.erase(std::unique(shards.begin(), shards.end()), shards.end());
  return shards;
}

}  // namespace eraser::storage
