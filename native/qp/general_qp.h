// A general convex QP in plain arrays (no Node-API):
//
//   minimise   ½ xᵀPx + qᵀx + r
//   subject to l ≤ Ax ≤ u          (m rows; ±∞ allowed, l = u for equalities)
//              lb ≤ x ≤ ub         (n variable bounds, separate from A; ±∞ allowed)
//
// P is given as its upper triangle (diagonal included) in CSC; A in CSC. Indices are
// 0-based and sorted within a column. Variable bounds are kept apart from A so that a
// problem read from QPS maps one to one; solvers that want them as rows append them.
#pragma once
#include <vector>

namespace advcorrect::qp {

struct CscMatrix {
  int nrows = 0;
  int ncols = 0;
  std::vector<int> col_ptr;   // ncols + 1
  std::vector<int> row_index; // nnz
  std::vector<double> values; // nnz

  int nnz() const { return col_ptr.empty() ? 0 : col_ptr.back(); }
};

struct GeneralQp {
  int n = 0;
  int m = 0;
  CscMatrix P;  // n × n, upper triangle
  std::vector<double> q;  // n
  double r = 0;
  CscMatrix A;  // m × n
  std::vector<double> l, u;    // m
  std::vector<double> lb, ub;  // n (empty = unbounded)
};

}  // namespace advcorrect::qp
