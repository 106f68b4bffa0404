// Test helper: Pearson's chi-square statistic against a uniform distribution and an upper
// critical value (Wilson–Hilferty approximation), for the uniformity tests of the sampling layer.
// Header-only, pure functions; thread-safe.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

namespace lrs::test {

// Σ (observed - expected)² / expected with expected = total / bins.
inline double chi_square_uniform(const std::vector<int64_t>& counts) {
  double total = 0;
  for (int64_t c : counts) total += static_cast<double>(c);
  const double expected = total / static_cast<double>(counts.size());
  double chi2 = 0;
  for (int64_t c : counts) {
    const double d = static_cast<double>(c) - expected;
    chi2 += d * d / expected;
  }
  return chi2;
}

// The chi-square value that a uniform sample exceeds with probability ~1e-4 (z = 3.72), for
// `dof` degrees of freedom. With fixed seeds the tests are deterministic; this bound only says
// how far from uniform a result may look before the test calls it biased.
inline double chi_square_critical(int64_t dof) {
  const double k = static_cast<double>(dof);
  const double z = 3.72;
  const double t = 1.0 - 2.0 / (9.0 * k) + z * std::sqrt(2.0 / (9.0 * k));
  return k * t * t * t;
}

}  // namespace lrs::test
