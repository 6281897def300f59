#include "eraser/certify/certificate.h"

#include <algorithm>
#include <climits>
#include <vector>

#include "counts.h"

namespace eraser::certify {
namespace internal {

int Argmax(const int* counts, int classes) {
  int best = 0;
  for (int c = 1; c < classes; ++c) {
    if (counts[c] > counts[best]) best = c;
  }
  return best;
}

Certificate CertifyCounts(const int* all, const int* unaffected, int affected,
                          int classes) {
  Certificate cert;
  cert.affected = affected;
  const int y = Argmax(all, classes);
  cert.answer = y;
  int best = INT_MAX;
  bool best_wins_tie = false;
  for (int c = 0; c < classes; ++c) {
    if (c == y) continue;
    const int slack = unaffected[y] - unaffected[c] - affected;
    const bool wins_tie = c < y;  // at equal counts c would beat y
    if (slack < best || (slack == best && wins_tie && !best_wins_tie)) {
      best = slack;
      best_wins_tie = wins_tie;
      cert.rival = c;
    }
  }
  if (cert.rival < 0) {  // a single class
    cert.certified = true;
    cert.margin = 0;
    return cert;
  }
  cert.margin = best;
  cert.certified = best > 0 || (best == 0 && !best_wins_tie);
  return cert;
}

}  // namespace internal

Certificate CertifyHardVote(const int32_t* votes, const uint8_t* affected,
                            std::size_t n, int classes) {
  internal::Counts all(classes);
  internal::Counts unaffected(classes);
  int a = 0;
  for (std::size_t k = 0; k < n; ++k) {
    const int32_t v = votes[k];
    const bool in_range = v >= 0 && v < classes;
    if (affected[k] != 0) {
      ++a;
    } else if (in_range) {
      ++unaffected[v];
    }
    if (in_range) ++all[v];
  }
  return internal::CertifyCounts(all.data(), unaffected.data(), a, classes);
}

SoftCertificate CertifySoftVote(const float* probs, const uint8_t* affected,
                                std::size_t n, int classes, double epsilon) {
  internal::BasicCounts<double> all(classes);
  internal::BasicCounts<double> unaffected(classes);
  SoftCertificate cert;
  for (std::size_t k = 0; k < n; ++k) {
    const float* p = probs + k * static_cast<std::size_t>(classes);
    const bool is_affected = affected[k] != 0;
    cert.affected += is_affected ? 1 : 0;
    for (int c = 0; c < classes; ++c) {
      all[c] += p[c];
      if (!is_affected) unaffected[c] += p[c];
    }
  }
  int y = 0;
  for (int c = 1; c < classes; ++c) {
    if (all[c] > all[y]) y = c;
  }
  cert.answer = y;
  double best = 0;
  for (int c = 0; c < classes; ++c) {
    if (c == y) continue;
    const double slack = unaffected[y] - unaffected[c] - cert.affected;
    if (cert.rival < 0 || slack < best) {
      best = slack;
      cert.rival = c;
    }
  }
  cert.margin = cert.rival < 0 ? 0 : best;
  // With nothing affected the answer depends on no pending deletion, even
  // when it is a tie: clean, whatever the margin.
  cert.certified = cert.affected == 0 || cert.rival < 0 || best > epsilon;
  return cert;
}

std::optional<int> PartialVote(const int32_t* votes, const uint8_t* affected,
                               std::size_t n, int classes) {
  internal::Counts unaffected(classes);
  bool any = false;
  for (std::size_t k = 0; k < n; ++k) {
    if (affected[k] != 0) continue;
    any = true;
    if (votes[k] >= 0 && votes[k] < classes) ++unaffected[votes[k]];
  }
  if (!any) return std::nullopt;
  return internal::Argmax(unaffected.data(), classes);
}

std::optional<int> SoftPartialVote(const float* probs, const uint8_t* affected,
                                   std::size_t n, int classes) {
  std::vector<double> sums(static_cast<std::size_t>(classes), 0.0);
  bool any = false;
  for (std::size_t k = 0; k < n; ++k) {
    if (affected[k] != 0) continue;
    any = true;
    for (int c = 0; c < classes; ++c) {
      sums[static_cast<std::size_t>(c)] +=
          probs[k * static_cast<std::size_t>(classes) + c];
    }
  }
  if (!any) return std::nullopt;
  int best = 0;
  for (int c = 1; c < classes; ++c) {
    if (sums[static_cast<std::size_t>(c)] >
        sums[static_cast<std::size_t>(best)]) {
      best = c;
    }
  }
  return best;
}

namespace {

// Counts the unaffected shards' votes into `counts`; returns the count of
// their leading labels, or -1 when only one label leads.
int TiedLead(const int32_t* votes, const uint8_t* affected, std::size_t n,
             int classes, internal::Counts* counts) {
  for (std::size_t k = 0; k < n; ++k) {
    if (affected[k] == 0 && votes[k] >= 0 && votes[k] < classes) {
      ++(*counts)[votes[k]];
    }
  }
  const int lead = (*counts)[internal::Argmax(counts->data(), classes)];
  int tied = 0;
  for (int c = 0; c < classes; ++c) tied += (*counts)[c] == lead;
  return tied > 1 ? lead : -1;
}

}  // namespace

bool UnaffectedShardsTie(const int32_t* votes, const uint8_t* affected,
                         std::size_t n, int classes) {
  internal::Counts unaffected(classes);
  return TiedLead(votes, affected, n, classes, &unaffected) >= 0;
}

std::optional<int> TieBreakVote(const int32_t* votes, const uint8_t* affected,
                                const int32_t* breakers, std::size_t n,
                                int classes, uint8_t* counted) {
  std::fill(counted, counted + n, 0);
  internal::Counts unaffected(classes), breaks(classes);
  const int lead = TiedLead(votes, affected, n, classes, &unaffected);
  if (lead < 0) return std::nullopt;
  bool any = false;
  for (std::size_t k = 0; k < n; ++k) {
    const int32_t b = breakers[k];
    if (affected[k] == 0 || b < 0 || b >= classes || unaffected[b] != lead) {
      continue;
    }
    ++breaks[b];
    counted[k] = 1;
    any = true;
  }
  if (!any) return std::nullopt;
  int best = -1;
  for (int c = 0; c < classes; ++c) {
    if (unaffected[c] == lead && (best < 0 || breaks[c] > breaks[best])) {
      best = c;
    }
  }
  return best;
}

}  // namespace eraser::certify
