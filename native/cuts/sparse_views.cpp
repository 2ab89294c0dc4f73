// The cut pool's rows as compressed sparse matrices: CSR on request, and a cached CSC copy
// for the solvers' column access.
#include "cuts/cut_pool.h"

namespace advcorrect::cuts {

void CutPool::toCsr(std::vector<int64_t>& row_ptr, std::vector<int32_t>& col_index, std::vector<double>& values) const {
  row_ptr.assign(1, 0);
  col_index.clear();
  values.clear();
  for (const auto& row : rows_) {
    const int count = row->nnz();
    for (int k = 0; k < count; ++k) {
      const size_t kk = static_cast<size_t>(k);
      const double v = row->single ? static_cast<double>(row->values_f32[kk]) : row->values_f64[kk];
      if (!row->sparse && v == 0.0) continue;  // dense rows: keep only non-zeros
      col_index.push_back(row->sparse ? row->index[kk] : k);
      values.push_back(v);
    }
    row_ptr.push_back(static_cast<int64_t>(values.size()));
  }
}
const CutPool::Csc& CutPool::csc() {
  if (csc_valid_) return csc_;
  std::vector<int64_t> row_ptr;
  std::vector<int32_t> cols;
  std::vector<double> vals;
  toCsr(row_ptr, cols, vals);
  csc_.col_ptr.assign(static_cast<size_t>(n_) + 1, 0);
  for (int32_t c : cols) ++csc_.col_ptr[static_cast<size_t>(c) + 1];
  for (size_t j = 0; j < static_cast<size_t>(n_); ++j) csc_.col_ptr[j + 1] += csc_.col_ptr[j];
  csc_.row_index.resize(cols.size());
  csc_.values.resize(cols.size());
  std::vector<int64_t> next(csc_.col_ptr.begin(), csc_.col_ptr.end() - 1);
  for (size_t i = 0; i + 1 < row_ptr.size(); ++i) {
    for (int64_t k = row_ptr[i]; k < row_ptr[i + 1]; ++k) {
      const int64_t at = next[static_cast<size_t>(cols[static_cast<size_t>(k)])]++;
      csc_.row_index[static_cast<size_t>(at)] = static_cast<int32_t>(i);
      csc_.values[static_cast<size_t>(at)] = vals[static_cast<size_t>(k)];
    }
  }
  csc_valid_ = true;
  return csc_;
}

}  // namespace advcorrect::cuts
