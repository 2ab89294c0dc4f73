// One row of the cut pool, stored compactly (float32 rows stay float32, sparse rows as
// index/value pairs), with its bounds, id and solve history, and the checked constructors.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "qp/cut_qp.h"

namespace advcorrect::cuts {

// One stored row. Exactly one of the four value arrays is used.
struct CutRow {
  int64_t id = 0;
  double lower = -qp::kInfinity;
  double upper = qp::kInfinity;
  bool sparse = false;
  bool single = false;            // float32 values
  std::vector<int32_t> index;     // sparse only, strictly increasing
  std::vector<float> values_f32;
  std::vector<double> values_f64;
  // Solve history: consecutive solves with a zero multiplier, and the last multiplier.
  int inactive_solves = 0;
  double last_multiplier = 0;
  // Cached aᵀw₀ for the w₀ whose fingerprint is w0_key (0 = none).
  double a_w0 = 0;
  uint64_t w0_key = 0;

  int nnz() const;
  size_t bytes() const;
  double dot(const double* x) const;                    // aᵀx
  void addTo(double scale, double* x) const;            // x += scale·a
  double entry(int col) const;                          // a_col (binary search when sparse)
  void toDense(double* out, const double* weights, int n) const;  // out = a ⊙ weights (weights may be null)
};

// New rows (id 0 until a pool stores them). They check what they are given — finite values,
// sorted in-range indices, bounds not NaN with lower ≤ upper — and throw std::invalid_argument.
std::unique_ptr<CutRow> MakeDenseRow(const float* values, int n, double lower, double upper);
std::unique_ptr<CutRow> MakeDenseRow(const double* values, int n, double lower, double upper);
std::unique_ptr<CutRow> MakeSparseRow(const int32_t* index, const float* values, int nnz, int n, double lower,
                                      double upper);
std::unique_ptr<CutRow> MakeSparseRow(const int32_t* index, const double* values, int nnz, int n, double lower,
                                      double upper);

}  // namespace advcorrect::cuts
