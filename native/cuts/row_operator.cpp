// The cut pool as a qp::RowOperator: products with A and Aᵀ, column access (through the CSC
// copy when it is current) and weighted Gram matrices.
#include "cuts/cut_pool.h"

#include <algorithm>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "cuts/gram.h"

namespace advcorrect::cuts {

void CutPool::multiply(const double* x, double* y) const {
  const long long m = static_cast<long long>(rows_.size());
#pragma omp parallel for schedule(dynamic, 4) if (m > 8)
  for (long long i = 0; i < m; ++i) y[i] = rows_[static_cast<size_t>(i)]->dot(x);
}

void CutPool::multiplyTransposeAdd(const double* y, double scale, double* x) const {
  // Threads split the columns, so no reduction is needed.
#pragma omp parallel
  {
    int threads = 1, thread = 0;
#ifdef _OPENMP
    threads = omp_get_num_threads();
    thread = omp_get_thread_num();
#endif
    const int j0 = static_cast<int>(static_cast<long long>(n_) * thread / threads);
    const int j1 = static_cast<int>(static_cast<long long>(n_) * (thread + 1) / threads);
    for (size_t i = 0; i < rows_.size(); ++i) {
      const double coef = scale * y[i];
      if (coef == 0.0) continue;
      const CutRow& row = *rows_[i];
      if (row.sparse) {
        const auto begin = std::lower_bound(row.index.begin(), row.index.end(), j0);
        for (auto it = begin; it != row.index.end() && *it < j1; ++it) {
          const size_t k = static_cast<size_t>(it - row.index.begin());
          x[*it] += coef * (row.single ? static_cast<double>(row.values_f32[k]) : row.values_f64[k]);
        }
      } else {
        Eigen::Map<Eigen::VectorXd> xv(x + j0, j1 - j0);
        if (row.single) {
          xv += coef * Eigen::Map<const Eigen::VectorXf>(row.values_f32.data() + j0, j1 - j0).cast<double>();
        } else {
          xv += coef * Eigen::Map<const Eigen::VectorXd>(row.values_f64.data() + j0, j1 - j0);
        }
      }
    }
  }
}

double CutPool::entry(int row, int col) const {
  if (!csc_valid_) return rows_[static_cast<size_t>(row)]->entry(col);
  const int32_t* begin = csc_.row_index.data() + csc_.col_ptr[static_cast<size_t>(col)];
  const int32_t* end = csc_.row_index.data() + csc_.col_ptr[static_cast<size_t>(col) + 1];
  const int32_t* it = std::lower_bound(begin, end, row);
  return it != end && *it == row ? csc_.values[static_cast<size_t>(it - csc_.row_index.data())] : 0.0;
}

double CutPool::columnDot(int col, const double* y) const {
  double sum = 0;
  if (csc_valid_) {
    for (int64_t k = csc_.col_ptr[static_cast<size_t>(col)]; k < csc_.col_ptr[static_cast<size_t>(col) + 1]; ++k) {
      sum += csc_.values[static_cast<size_t>(k)] * y[csc_.row_index[static_cast<size_t>(k)]];
    }
    return sum;
  }
  for (size_t i = 0; i < rows_.size(); ++i) {
    if (y[i] != 0) sum += rows_[i]->entry(col) * y[i];
  }
  return sum;
}

void CutPool::addColumn(int col, double scale, double* y) const {
  if (csc_valid_) {
    for (int64_t k = csc_.col_ptr[static_cast<size_t>(col)]; k < csc_.col_ptr[static_cast<size_t>(col) + 1]; ++k) {
      y[csc_.row_index[static_cast<size_t>(k)]] += scale * csc_.values[static_cast<size_t>(k)];
    }
    return;
  }
  for (size_t i = 0; i < rows_.size(); ++i) y[i] += scale * rows_[i]->entry(col);
}

void CutPool::weightedGram(const double* weights, Eigen::MatrixXd& gram) const {
  const Eigen::Index m = static_cast<Eigen::Index>(rows_.size());
  gram.resize(m, m);
  GramRange(rows_, n_, weights, 0, GramMap(gram.data(), m, m, Eigen::OuterStride<>(std::max<Eigen::Index>(1, m))), {});
}

}  // namespace advcorrect::cuts