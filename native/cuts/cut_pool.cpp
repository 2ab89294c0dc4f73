// The cut pool's storage: appending and removing rows (G compacted in place), ids, the
// storage of G and its incremental update, A w₀, and the problem lent to the solvers. The
// rows, the Gram fold, the sparse views and the row operator live in their own files.
#include "cuts/cut_pool.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "cuts/gram.h"

namespace advcorrect::cuts {

namespace {

// A pool whose non-zeros exceed this multiple of m + n counts as having costly rows (see
// CutQpProblem::costly_rows): no CSC copy, and the dual solver refreshes x sparingly.
constexpr size_t kCostlyRowsFactor = 64;

}  // namespace

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
int64_t CutPool::appendDense(const float* values, double lower, double upper) {
  return push(MakeDenseRow(values, n_, lower, upper));
}
int64_t CutPool::appendDense(const double* values, double lower, double upper) {
  return push(MakeDenseRow(values, n_, lower, upper));
}
int64_t CutPool::appendSparse(const int32_t* index, const float* values, int nnz, double lower, double upper) {
  return push(MakeSparseRow(index, values, nnz, n_, lower, upper));
}
int64_t CutPool::appendSparse(const int32_t* index, const double* values, int nnz, double lower, double upper) {
  return push(MakeSparseRow(index, values, nnz, n_, lower, upper));
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
    GramMap gram = gramBlock(gram_rows_);
    for (Eigen::Index c = 0; c < g; ++c) {
      for (Eigen::Index r = 0; r < g; ++r) gram(r, c) = gram(kept_gram[static_cast<size_t>(r)], kept_gram[static_cast<size_t>(c)]);
    }
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
  const qp::GramView g = gram();
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

qp::GramView CutPool::gram() {
  updateGram();
  const Eigen::Index m = static_cast<Eigen::Index>(gram_rows_);
  return qp::GramView(gram_storage_.data(), m, m, Eigen::OuterStride<>(std::max<Eigen::Index>(1, static_cast<Eigen::Index>(gram_capacity_))));
}

GramMap CutPool::gramBlock(size_t size) {
  const Eigen::Index s = static_cast<Eigen::Index>(size);
  return GramMap(gram_storage_.data(), s, s, Eigen::OuterStride<>(std::max<Eigen::Index>(1, static_cast<Eigen::Index>(gram_capacity_))));
}
void CutPool::reserveGram(size_t rows) {
  if (rows <= gram_capacity_) return;
  const size_t limit = maxGramBytes();
  if (rows > 0 && rows * rows > limit / sizeof(double)) {
    throw std::length_error("a dense Gram matrix for " + std::to_string(rows) + " rows needs " +
                            std::to_string(rows * rows * sizeof(double) >> 20) + " MiB, more than a quarter of the memory (" +
                            std::to_string(limit >> 20) + " MiB)");
  }
  // A quarter of headroom: appends of a few rows then fold in place until the pool has grown
  // by a quarter, for at most 1.56 times the memory of G itself.
  size_t capacity = std::max(rows + rows / 4, size_t{64});
  if (capacity * capacity > limit / sizeof(double)) capacity = rows;
  std::vector<double> storage(capacity * capacity);
  for (size_t c = 0; c < gram_rows_; ++c) {
    std::copy_n(gram_storage_.data() + c * gram_capacity_, gram_rows_, storage.data() + c * capacity);
  }
  gram_storage_.swap(storage);
  gram_capacity_ = capacity;
}

bool CutPool::updateGram(const std::function<bool()>& stop) {
  const size_t m = rows_.size();
  if (gram_rows_ == m) return true;
  reserveGram(m);
  Eigen::VectorXd weights;
  if (diagonal_.size()) weights = diagonal_.cwiseInverse();
  gram_rows_ = GramRange(rows_, n_, diagonal_.size() ? weights.data() : nullptr, gram_rows_, gramBlock(m), stop);
  return gram_rows_ == m;
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
qp::CutQpProblem CutPool::problem(const double* w0, bool with_gram) {
  if (with_gram) updateGram();
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
  if (with_gram) {
    p.gram = gram_storage_.data();
    p.gram_stride = static_cast<Eigen::Index>(std::max<size_t>(1, gram_capacity_));
  }
  p.a_w0 = a_w0_.data();
  // With bounds the dual solver reads columns of A. Small pools get a CSC copy for that; long
  // rows (gradient cuts: hundreds of non-zeros per variable and row pair) are read in place,
  // since a copy would triple their memory and be rebuilt after every append.
  if (hasBounds()) {
    size_t nnz = 0;
    for (const auto& row : rows_) nnz += static_cast<size_t>(row->nnz());
    p.costly_rows = nnz > kCostlyRowsFactor * (rows_.size() + static_cast<size_t>(n_));
    if (!p.costly_rows) csc();
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
}  // namespace advcorrect::cuts
