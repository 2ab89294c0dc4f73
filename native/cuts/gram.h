// The Gram fold: G = A diag(weights) Aᵀ for the rows of a cut pool, filled in incrementally
// (the rows appended since the last fold against all rows), panel by panel. CutPool keeps G
// with it; the fold itself is a plain function over the rows so the C++ tests can compare it
// with a naive A·Aᵀ.
#pragma once
#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include <Eigen/Dense>

#include "cuts/cut_row.h"

namespace advcorrect::cuts {

// A column-major block of G's storage (leading dimension ≥ the number of rows).
using GramMap = Eigen::Map<Eigen::MatrixXd, 0, Eigen::OuterStride<>>;

// Fills the Gram entries of rows [from, m) against rows [0, m), panel by panel, asking stop()
// (if given) between panels. Returns the number of rows whose entries are complete.
size_t GramRange(const std::vector<std::unique_ptr<CutRow>>& rows, int n, const double* weights, size_t from,
                 GramMap gram, const std::function<bool()>& stop);

}  // namespace advcorrect::cuts
