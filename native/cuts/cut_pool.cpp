#include "cuts/cut_pool.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <string>
#include <type_traits>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace advcorrect::cuts {

namespace {

using RowMajorMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Bytes a scratch block of dense rows may take (per thread), and the new-row panel.
constexpr size_t kBlockBytes = size_t{48} << 20;
constexpr size_t kPanelBytes = size_t{96} << 20;

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

// Fills G(i, c) and G(c, i) for all i < c1 and c in [c0, c1): the Gram entries between rows
// [0, c1) and the panel of rows [c0, c1), under weights (n values, null = ones).
void GramPanel(const std::vector<std::unique_ptr<CutRow>>& rows, int n, const double* weights, size_t c0,
               size_t c1, Eigen::MatrixXd& gram) {
  const Eigen::Index k = static_cast<Eigen::Index>(c1 - c0);
  Eigen::MatrixXd panel(n, k);  // column t = weights ⊙ a_{c0+t}
  for (Eigen::Index t = 0; t < k; ++t) rows[c0 + static_cast<size_t>(t)]->toDense(panel.col(t).data(), weights, n);

  const size_t block = std::max<size_t>(1, std::min<size_t>(64, kBlockBytes / (sizeof(double) * std::max(n, 1))));
  const long long blocks = static_cast<long long>((c1 + block - 1) / block);
#pragma omp parallel
  {
    RowMajorMatrix dense;
    Eigen::MatrixXd out;
    Eigen::VectorXd chunk;
#pragma omp for schedule(dynamic, 1)
    for (long long b = 0; b < blocks; ++b) {
      const size_t r0 = static_cast<size_t>(b) * block;
      const size_t r1 = std::min(c1, r0 + block);
      const Eigen::Index rb = static_cast<Eigen::Index>(r1 - r0);
      // Dense-ish rows go through a GEMM; very sparse rows use gathers.
      size_t nnz = 0;
      for (size_t i = r0; i < r1; ++i) nnz += static_cast<size_t>(rows[i]->nnz());
      out.resize(rb, k);
      // Few new rows (the usual warm case): dot each stored row with the panel columns while
      // it is in cache, reading A once in its own precision. Many new rows: gather + GEMM.
      if (k > 16 && nnz * 8 >= static_cast<size_t>(rb) * static_cast<size_t>(n)) {
        dense.resize(rb, n);
        for (size_t i = r0; i < r1; ++i) rows[i]->toDense(dense.row(static_cast<Eigen::Index>(i - r0)).data(), nullptr, n);
        out.noalias() = dense * panel;
      } else {
        out.setZero();
        // Dense rows: cache-blocked over columns so each panel chunk stays in L2 while the
        // block's rows stream through it once.
        constexpr Eigen::Index kChunk = 2048;
        for (Eigen::Index j0 = 0; j0 < n; j0 += kChunk) {
          const Eigen::Index len = std::min<Eigen::Index>(kChunk, n - j0);
          for (size_t i = r0; i < r1; ++i) {
            const CutRow& row = *rows[i];
            if (row.sparse) continue;
            const Eigen::Index oi = static_cast<Eigen::Index>(i - r0);
            if (row.single) {
              // Convert once to float64 (vectorises), then Eigen's packet dot products.
              chunk.resize(len);
              const float* src = row.values_f32.data() + j0;
              for (Eigen::Index q = 0; q < len; ++q) chunk[q] = static_cast<double>(src[q]);
              for (Eigen::Index t = 0; t < k; ++t) out(oi, t) += chunk.dot(panel.col(t).segment(j0, len));
            } else {
              Eigen::Map<const Eigen::VectorXd> seg(row.values_f64.data() + j0, len);
              for (Eigen::Index t = 0; t < k; ++t) out(oi, t) += seg.dot(panel.col(t).segment(j0, len));
            }
          }
        }
        for (size_t i = r0; i < r1; ++i) {
          if (!rows[i]->sparse) continue;
          for (Eigen::Index t = 0; t < k; ++t) out(static_cast<Eigen::Index>(i - r0), t) = rows[i]->dot(panel.col(t).data());
        }
      }
      for (size_t i = r0; i < r1; ++i) {
        for (Eigen::Index t = 0; t < k; ++t) {
          const double v = out(static_cast<Eigen::Index>(i - r0), t);
          gram(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(c0) + t) = v;
          gram(static_cast<Eigen::Index>(c0) + t, static_cast<Eigen::Index>(i)) = v;
        }
      }
    }
  }
}

void GramRange(const std::vector<std::unique_ptr<CutRow>>& rows, int n, const double* weights, size_t from,
               Eigen::MatrixXd& gram) {
  const size_t m = rows.size();
  const size_t panel = std::max<size_t>(1, std::min<size_t>(512, kPanelBytes / (sizeof(double) * std::max(n, 1))));
  for (size_t c0 = from; c0 < m; c0 += panel) GramPanel(rows, n, weights, c0, std::min(m, c0 + panel), gram);
}

}  // namespace

// ---- CutRow ----

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
  Eigen::Map<const Eigen::VectorXd> xv(x, len);
  if (single) return Eigen::Map<const Eigen::VectorXf>(values_f32.data(), len).cast<double>().dot(xv);
  return Eigen::Map<const Eigen::VectorXd>(values_f64.data(), len).dot(xv);
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

// ---- CutPool ----

CutPool::CutPool(int n) : n_(n) {
  if (n <= 0) throw std::invalid_argument("the number of variables must be a positive integer");
}

void CutPool::setDiagonal(const Eigen::VectorXd& diagonal) {
  if (diagonal.size() != 0 && diagonal.size() != n_) throw std::invalid_argument("diagonal must have n entries");
  for (Eigen::Index j = 0; j < diagonal.size(); ++j) {
    if (!(diagonal[j] > 0) || !std::isfinite(diagonal[j])) {
      throw std::invalid_argument("diagonal entries must be positive and finite");
    }
  }
  diagonal_ = diagonal;
  gram_.resize(0, 0);
  gram_rows_ = 0;
}

void CutPool::setBounds(const Eigen::VectorXd& lower, const Eigen::VectorXd& upper) {
  if (lower.size() != upper.size() || (lower.size() != 0 && lower.size() != n_)) {
    throw std::invalid_argument("variable bounds must have n entries each");
  }
  for (Eigen::Index j = 0; j < lower.size(); ++j) {
    if (std::isnan(lower[j]) || std::isnan(upper[j]) || lower[j] > upper[j] || lower[j] == qp::kInfinity ||
        upper[j] == -qp::kInfinity) {
      throw std::invalid_argument("variable bounds must satisfy lower ≤ upper (no NaN)");
    }
  }
  var_lower_ = lower;
  var_upper_ = upper;
  warm_.valid = false;
}

int64_t CutPool::push(std::unique_ptr<CutRow> row) {
  csc_valid_ = false;
  row->id = next_id_++;
  lower_.push_back(row->lower);
  upper_.push_back(row->upper);
  rows_.push_back(std::move(row));
  return rows_.back()->id;
}

template <typename T>
static std::unique_ptr<CutRow> MakeDense(const T* values, int n, double lower, double upper) {
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
static std::unique_ptr<CutRow> MakeSparse(const int32_t* index, const T* values, int nnz, int n, double lower,
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

int64_t CutPool::appendDense(const float* values, double lower, double upper) {
  return push(MakeDense(values, n_, lower, upper));
}
int64_t CutPool::appendDense(const double* values, double lower, double upper) {
  return push(MakeDense(values, n_, lower, upper));
}
int64_t CutPool::appendSparse(const int32_t* index, const float* values, int nnz, double lower, double upper) {
  return push(MakeSparse(index, values, nnz, n_, lower, upper));
}
int64_t CutPool::appendSparse(const int32_t* index, const double* values, int nnz, double lower, double upper) {
  return push(MakeSparse(index, values, nnz, n_, lower, upper));
}

void CutPool::keepPositions(const std::vector<char>& keep) {
  csc_valid_ = false;
  const size_t m = rows_.size();
  std::vector<Eigen::Index> kept_gram;
  size_t out = 0;
  for (size_t i = 0; i < m; ++i) {
    if (!keep[i]) continue;
    if (i < gram_rows_) kept_gram.push_back(static_cast<Eigen::Index>(i));
    rows_[out] = std::move(rows_[i]);
    lower_[out] = lower_[i];
    upper_[out] = upper_[i];
    ++out;
  }
  rows_.resize(out);
  lower_.resize(out);
  upper_.resize(out);
  const Eigen::Index g = static_cast<Eigen::Index>(kept_gram.size());
  if (g != static_cast<Eigen::Index>(gram_rows_)) {
    // Compact G in place: kept indices are increasing, so moving forward never overwrites
    // an entry still to be read.
    for (Eigen::Index c = 0; c < g; ++c) {
      for (Eigen::Index r = 0; r < g; ++r) gram_(r, c) = gram_(kept_gram[static_cast<size_t>(r)], kept_gram[static_cast<size_t>(c)]);
    }
    gram_.conservativeResize(g, g);
    gram_rows_ = static_cast<size_t>(g);
  }
}

int CutPool::remove(const std::vector<int64_t>& ids) {
  std::vector<char> keep(rows_.size(), 1);
  int removed = 0;
  for (int64_t id : ids) {
    const int pos = positionOf(id);
    if (pos >= 0 && keep[static_cast<size_t>(pos)]) {
      keep[static_cast<size_t>(pos)] = 0;
      ++removed;
    }
  }
  if (removed) keepPositions(keep);
  return removed;
}

int CutPool::removeInactive(int k) {
  if (k < 1) throw std::invalid_argument("k must be a positive integer");
  std::vector<char> keep(rows_.size(), 1);
  int removed = 0;
  for (size_t i = 0; i < rows_.size(); ++i) {
    if (rows_[i]->inactive_solves >= k) {
      keep[i] = 0;
      ++removed;
    }
  }
  if (removed) keepPositions(keep);
  return removed;
}

int CutPool::removeDuplicates(double tol) {
  if (!(tol >= 0) || tol >= 1) throw std::invalid_argument("tolerance must be in [0, 1)");
  const Eigen::MatrixXd& g = gram();
  const size_t m = rows_.size();
  std::vector<char> keep(m, 1);
  auto close = [tol](double a, double b) {
    if (std::isinf(a) || std::isinf(b)) return a == b;
    return std::abs(a - b) <= tol * std::max({1.0, std::abs(a), std::abs(b)});
  };
  int removed = 0;
  for (size_t i = 0; i < m; ++i) {
    const double gii = g(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(i));
    if (gii == 0 && lower_[i] <= 0 && upper_[i] >= 0) {
      keep[i] = 0;
      ++removed;
    }
  }
  for (size_t j = 0; j < m; ++j) {
    if (!keep[j]) continue;
    const double gjj = g(static_cast<Eigen::Index>(j), static_cast<Eigen::Index>(j));
    if (gjj == 0) continue;
    for (size_t i = 0; i < j; ++i) {
      if (!keep[i]) continue;
      const double gii = g(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(i));
      if (gii == 0) continue;
      const double cosine = g(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) / std::sqrt(gii * gjj);
      if (cosine < 1 - tol) continue;
      // a_j ≈ c·a_i: compare the bounds of row j divided by c with those of row i.
      const double c = std::sqrt(gjj / gii);
      if (close(lower_[j] / c, lower_[i]) && close(upper_[j] / c, upper_[i])) {
        keep[j] = 0;
        ++removed;
        break;
      }
    }
  }
  if (removed) keepPositions(keep);
  return removed;
}

std::vector<int64_t> CutPool::ids() const {
  std::vector<int64_t> out;
  out.reserve(rows_.size());
  for (const auto& row : rows_) out.push_back(row->id);
  return out;
}

int CutPool::positionOf(int64_t id) const {
  // Ids increase with position (rows are appended with growing ids and removals keep order).
  auto it = std::lower_bound(rows_.begin(), rows_.end(), id,
                             [](const std::unique_ptr<CutRow>& row, int64_t value) { return row->id < value; });
  if (it == rows_.end() || (*it)->id != id) return -1;
  return static_cast<int>(it - rows_.begin());
}

const Eigen::MatrixXd& CutPool::gram() {
  updateGram();
  return gram_;
}

void CutPool::updateGram() {
  const size_t m = rows_.size();
  if (gram_rows_ == m && static_cast<size_t>(gram_.rows()) == m) return;
  gram_.conservativeResize(static_cast<Eigen::Index>(m), static_cast<Eigen::Index>(m));
  Eigen::VectorXd weights;
  if (diagonal_.size()) weights = diagonal_.cwiseInverse();
  GramRange(rows_, n_, diagonal_.size() ? weights.data() : nullptr, gram_rows_, gram_);
  gram_rows_ = m;
}

size_t CutPool::memoryBytes() const {
  size_t bytes = sizeof(CutPool);
  for (const auto& row : rows_) bytes += row->bytes() + sizeof(std::unique_ptr<CutRow>);
  bytes += (lower_.capacity() + upper_.capacity()) * sizeof(double);
  bytes += static_cast<size_t>(gram_.size()) * sizeof(double);
  bytes += a_w0_.capacity() * sizeof(double) + csc_.col_ptr.capacity() * sizeof(int64_t) +
           csc_.row_index.capacity() * sizeof(int32_t) + csc_.values.capacity() * sizeof(double);
  bytes += static_cast<size_t>(diagonal_.size() + var_lower_.size() + var_upper_.size()) * sizeof(double);
  bytes += warm_.row_ids.capacity() * sizeof(int64_t) +
           (warm_.row_signs.capacity() + warm_.bound_vars.capacity() + warm_.bound_signs.capacity()) * sizeof(int);
  return bytes;
}

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

namespace {
uint64_t Fingerprint(const double* x, int n) {
  uint64_t h = 1469598103934665603ULL;
  for (int j = 0; j < n; ++j) {
    uint64_t bits;
    std::memcpy(&bits, &x[j], sizeof bits);
    h = (h ^ bits) * 1099511628211ULL;
    h ^= h >> 29;
  }
  return h == 0 ? 1 : h;
}
}  // namespace

const std::vector<double>& CutPool::activityAt(const double* w0) {
  const uint64_t key = Fingerprint(w0, n_);
  const long long m = static_cast<long long>(rows_.size());
  a_w0_.resize(rows_.size());
#pragma omp parallel for schedule(dynamic, 4) if (m > 8)
  for (long long i = 0; i < m; ++i) {
    CutRow& row = *rows_[static_cast<size_t>(i)];
    if (row.w0_key != key) {
      row.a_w0 = row.dot(w0);
      row.w0_key = key;
    }
    a_w0_[static_cast<size_t>(i)] = row.a_w0;
  }
  return a_w0_;
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

qp::CutQpProblem CutPool::problem(const double* w0) {
  updateGram();
  activityAt(w0);
  qp::CutQpProblem p;
  p.n = n_;
  p.m = size();
  p.rows = this;
  p.row_lower = lower_.data();
  p.row_upper = upper_.data();
  p.diagonal = diagonal_.size() ? diagonal_.data() : nullptr;
  p.var_lower = var_lower_.size() ? var_lower_.data() : nullptr;
  p.var_upper = var_upper_.size() ? var_upper_.data() : nullptr;
  p.w0 = w0;
  p.gram = &gram_;
  p.a_w0 = a_w0_.data();
  if (hasBounds()) {
    const Csc& c = csc();
    p.csc_col_ptr = c.col_ptr.data();
    p.csc_row_index = c.row_index.data();
    p.csc_values = c.values.data();
  }
  return p;
}

void CutPool::recordSolve(const Eigen::VectorXd& y) {
  if (y.size() != static_cast<Eigen::Index>(rows_.size())) return;
  for (size_t i = 0; i < rows_.size(); ++i) {
    const double yi = y[static_cast<Eigen::Index>(i)];
    rows_[i]->last_multiplier = yi;
    rows_[i]->inactive_solves = yi == 0.0 ? rows_[i]->inactive_solves + 1 : 0;
  }
}

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

void CutPool::weightedGram(const double* weights, Eigen::MatrixXd& gram) const {
  const Eigen::Index m = static_cast<Eigen::Index>(rows_.size());
  gram.resize(m, m);
  GramRange(rows_, n_, weights, 0, gram);
}

}  // namespace advcorrect::cuts
