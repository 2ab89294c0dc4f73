#include "cuts/cut_row.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <type_traits>

#include "cuts/simd_dot.h"

namespace advcorrect::cuts {

namespace {

template <typename T>
bool AllFinite(const T* values, size_t count) {
  for (size_t k = 0; k < count; ++k) {
    if (!std::isfinite(static_cast<double>(values[k]))) return false;
  }
  return true;
}

void CheckBounds(double lower, double upper) {
  if (std::isnan(lower) || std::isnan(upper)) throw std::invalid_argument("row bounds must not be NaN");
  if (lower > upper) throw std::invalid_argument("row lower bound exceeds its upper bound");
  if (lower == qp::kInfinity || upper == -qp::kInfinity) {
    throw std::invalid_argument("row bounds must not be +Infinity (lower) or -Infinity (upper)");
  }
}
template <typename T>
std::unique_ptr<CutRow> MakeDenseRowOf(const T* values, int n, double lower, double upper) {
  CheckBounds(lower, upper);
  if (!AllFinite(values, static_cast<size_t>(n))) throw std::invalid_argument("row values must be finite");
  auto row = std::make_unique<CutRow>();
  row->lower = lower;
  row->upper = upper;
  if constexpr (std::is_same_v<T, float>) {
    row->single = true;
    row->values_f32.assign(values, values + n);
  } else {
    row->values_f64.assign(values, values + n);
  }
  return row;
}

template <typename T>
std::unique_ptr<CutRow> MakeSparseRowOf(const int32_t* index, const T* values, int nnz, int n, double lower,
                                          double upper) {
  CheckBounds(lower, upper);
  if (nnz < 0 || nnz > n) throw std::invalid_argument("sparse row has more entries than variables");
  for (int k = 0; k < nnz; ++k) {
    if (index[k] < 0 || index[k] >= n) throw std::invalid_argument("sparse row index out of range");
    if (k > 0 && index[k] <= index[k - 1]) throw std::invalid_argument("sparse row indices must be strictly increasing");
  }
  if (!AllFinite(values, static_cast<size_t>(nnz))) throw std::invalid_argument("row values must be finite");
  auto row = std::make_unique<CutRow>();
  row->lower = lower;
  row->upper = upper;
  row->sparse = true;
  row->index.assign(index, index + nnz);
  if constexpr (std::is_same_v<T, float>) {
    row->single = true;
    row->values_f32.assign(values, values + nnz);
  } else {
    row->values_f64.assign(values, values + nnz);
  }
  return row;
}

}  // namespace

std::unique_ptr<CutRow> MakeDenseRow(const float* values, int n, double lower, double upper) {
  return MakeDenseRowOf(values, n, lower, upper);
}
std::unique_ptr<CutRow> MakeDenseRow(const double* values, int n, double lower, double upper) {
  return MakeDenseRowOf(values, n, lower, upper);
}
std::unique_ptr<CutRow> MakeSparseRow(const int32_t* index, const float* values, int nnz, int n, double lower,
                                      double upper) {
  return MakeSparseRowOf(index, values, nnz, n, lower, upper);
}
std::unique_ptr<CutRow> MakeSparseRow(const int32_t* index, const double* values, int nnz, int n, double lower,
                                      double upper) {
  return MakeSparseRowOf(index, values, nnz, n, lower, upper);
}

int CutRow::nnz() const {
  if (sparse) return static_cast<int>(index.size());
  return static_cast<int>(single ? values_f32.size() : values_f64.size());
}

size_t CutRow::bytes() const {
  return sizeof(CutRow) + index.capacity() * sizeof(int32_t) + values_f32.capacity() * sizeof(float) +
         values_f64.capacity() * sizeof(double);
}

double CutRow::dot(const double* x) const {
  const size_t count = static_cast<size_t>(nnz());
  double sum = 0;
  if (sparse) {
    if (single) {
      for (size_t k = 0; k < count; ++k) sum += static_cast<double>(values_f32[k]) * x[index[k]];
    } else {
      for (size_t k = 0; k < count; ++k) sum += values_f64[k] * x[index[k]];
    }
    return sum;
  }
  const Eigen::Index len = static_cast<Eigen::Index>(count);
  return single ? DenseDot(values_f32.data(), x, len) : DenseDot(values_f64.data(), x, len);
}

void CutRow::addTo(double scale, double* x) const {
  const size_t count = static_cast<size_t>(nnz());
  if (sparse) {
    if (single) {
      for (size_t k = 0; k < count; ++k) x[index[k]] += scale * static_cast<double>(values_f32[k]);
    } else {
      for (size_t k = 0; k < count; ++k) x[index[k]] += scale * values_f64[k];
    }
    return;
  }
  const Eigen::Index len = static_cast<Eigen::Index>(count);
  Eigen::Map<Eigen::VectorXd> xv(x, len);
  if (single) {
    xv += scale * Eigen::Map<const Eigen::VectorXf>(values_f32.data(), len).cast<double>();
  } else {
    xv += scale * Eigen::Map<const Eigen::VectorXd>(values_f64.data(), len);
  }
}

double CutRow::entry(int col) const {
  if (!sparse) return single ? static_cast<double>(values_f32[static_cast<size_t>(col)]) : values_f64[static_cast<size_t>(col)];
  auto it = std::lower_bound(index.begin(), index.end(), col);
  if (it == index.end() || *it != col) return 0.0;
  const size_t k = static_cast<size_t>(it - index.begin());
  return single ? static_cast<double>(values_f32[k]) : values_f64[k];
}

void CutRow::toDense(double* out, const double* weights, int n) const {
  std::fill(out, out + n, 0.0);
  const size_t count = static_cast<size_t>(nnz());
  for (size_t k = 0; k < count; ++k) {
    const size_t j = sparse ? static_cast<size_t>(index[k]) : k;
    const double v = single ? static_cast<double>(values_f32[k]) : values_f64[k];
    out[j] = weights ? v * weights[j] : v;
  }
}

}  // namespace advcorrect::cuts
