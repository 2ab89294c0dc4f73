// The factored cut pool: storage, ids, the Gram fold over factored and dense rows, A w₀, the
// row operator (A·x and Aᵀ·y by one GEMM per block) and the problem lent to the dual solver.
#include "cuts/factored_pool.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace advcorrect::cuts {

namespace {

using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Factored pairs folded between two stop() checks.
constexpr size_t kPairsPerCheck = 4096;

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

// vᵀ a for every factored row of `rows` listed in `positions`, into out[position].
template <typename T>
void DenseAgainstPositions(const FactoredLayout& layout, const T* v, const std::vector<std::unique_ptr<FactoredRow>>& rows,
                           const std::vector<size_t>& positions, double* out) {
  std::vector<const FactoredRow*> list;
  for (size_t i : positions) list.push_back(rows[i].get());
  std::vector<double> products(list.size());
  DenseAgainstFactored(layout, v, list, products.data());
  for (size_t t = 0; t < positions.size(); ++t) out[positions[t]] = products[t];
}

template <typename T>
double DenseDotN(const T* a, const double* x, int64_t n) {
  double sum = 0;
#pragma omp parallel for reduction(+ : sum) schedule(static) if (n > (1 << 16))
  for (int64_t j = 0; j < n; ++j) sum += static_cast<double>(a[j]) * x[j];
  return sum;
}

template <typename T>
void AddDense(const T* a, int64_t n, double coef, double* x) {
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (int64_t j = 0; j < n; ++j) x[j] += coef * static_cast<double>(a[j]);
}

}  // namespace

FactoredCutPool::FactoredCutPool(int n, std::vector<FactorBlock> blocks) : layout_(n, std::move(blocks)) {}

int64_t FactoredCutPool::push(std::unique_ptr<FactoredRow> row) {
  row->id = next_id_++;
  lower_.push_back(row->lower);
  upper_.push_back(row->upper);
  rows_.push_back(std::move(row));
  return rows_.back()->id;
}
int64_t FactoredCutPool::appendFactored(const float* factors, int64_t factor_count, const float* rest,
                                        int64_t rest_count, double lower, double upper) {
  return push(MakeFactoredRow(layout_, factors, factor_count, rest, rest_count, lower, upper));
}
int64_t FactoredCutPool::appendDense(const float* values, double lower, double upper) {
  return push(MakeDenseFactoredRow(layout_, values, lower, upper));
}
int64_t FactoredCutPool::appendDense(const double* values, double lower, double upper) {
  return push(MakeDenseFactoredRow(layout_, values, lower, upper));
}

void FactoredCutPool::keepPositions(const std::vector<char>& keep) {
  std::vector<Eigen::Index> kept_gram;
  size_t out = 0;
  for (size_t i = 0; i < rows_.size(); ++i) {
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
  // Compact the current block of G: kept indices increase, so nothing is overwritten before it is read.
  const Eigen::Index g = static_cast<Eigen::Index>(kept_gram.size());
  for (Eigen::Index c = 0; c < g; ++c) {
    for (Eigen::Index r = 0; r < g; ++r) gram_(r, c) = gram_(kept_gram[static_cast<size_t>(r)], kept_gram[static_cast<size_t>(c)]);
  }
  gram_rows_ = static_cast<size_t>(g);
  gram_.conservativeResize(static_cast<Eigen::Index>(out), static_cast<Eigen::Index>(out));
}

int FactoredCutPool::remove(const std::vector<int64_t>& ids) {
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

int FactoredCutPool::removeInactive(int k) {
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

std::vector<int64_t> FactoredCutPool::ids() const {
  std::vector<int64_t> out;
  for (const auto& row : rows_) out.push_back(row->id);
  return out;
}

int FactoredCutPool::positionOf(int64_t id) const {
  auto it = std::lower_bound(rows_.begin(), rows_.end(), id,
                             [](const std::unique_ptr<FactoredRow>& row, int64_t value) { return row->id < value; });
  if (it == rows_.end() || (*it)->id != id) return -1;
  return static_cast<int>(it - rows_.begin());
}

size_t FactoredCutPool::fold(size_t from, Eigen::MatrixXd& gram, const std::function<bool()>& stop) const {
  const size_t m = rows_.size();
  if (from >= m) return m;
  std::vector<size_t> factored, dense;
  for (size_t i = 0; i < m; ++i) (rows_[i]->dense ? dense : factored).push_back(i);
  const auto store = [&](size_t i, size_t j, double v) {
    gram(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) = v;
    gram(static_cast<Eigen::Index>(j), static_cast<Eigen::Index>(i)) = v;
  };
  // Factored × factored pairs with at least one new row: (x·x')(d·d') per block, no pass over n.
  std::vector<std::pair<size_t, size_t>> pairs;
  for (size_t a = 0; a < factored.size(); ++a) {
    for (size_t b = a; b < factored.size(); ++b) {
      if (std::max(factored[a], factored[b]) >= from) pairs.emplace_back(factored[a], factored[b]);
    }
  }
  for (size_t p0 = 0; p0 < pairs.size(); p0 += kPairsPerCheck) {
    if (stop && stop()) return from;
    const long long count = static_cast<long long>(std::min(pairs.size(), p0 + kPairsPerCheck) - p0);
#pragma omp parallel for schedule(dynamic, 16) if (count > 64)
    for (long long t = 0; t < count; ++t) {
      const auto [i, j] = pairs[p0 + static_cast<size_t>(t)];
      store(i, j, FactoredRowDot(layout_, *rows_[i], *rows_[j]));
    }
  }
  // Each dense row once against the factored rows it pairs with (all of them for a new dense
  // row, the new ones for an old one): one GEMM per block for the whole set.
  std::vector<double> column(m);
  for (size_t i : dense) {
    std::vector<size_t> partners;
    for (size_t j : factored) {
      if (i >= from || j >= from) partners.push_back(j);
    }
    if (partners.empty()) continue;
    if (stop && stop()) return from;
    const FactoredRow& a = *rows_[i];
    if (a.dense_f32.empty()) {
      DenseAgainstPositions(layout_, a.dense_f64.data(), rows_, partners, column.data());
    } else {
      DenseAgainstPositions(layout_, a.dense_f32.data(), rows_, partners, column.data());
    }
    for (size_t j : partners) store(i, j, column[j]);
  }
  // Dense × dense pairs with a new row.
  for (size_t a = 0; a < dense.size(); ++a) {
    for (size_t b = a; b < dense.size(); ++b) {
      if (std::max(dense[a], dense[b]) < from) continue;
      if (stop && stop()) return from;
      store(dense[a], dense[b], FactoredRowDot(layout_, *rows_[dense[a]], *rows_[dense[b]]));
    }
  }
  return m;
}

bool FactoredCutPool::updateGram(const std::function<bool()>& stop) {
  const size_t m = rows_.size();
  if (gram_rows_ == m) return true;
  const size_t limit = CutPool::maxGramBytes();
  if (m * m > limit / sizeof(double)) {
    throw std::length_error("a dense Gram matrix for " + std::to_string(m) + " rows needs " +
                            std::to_string(m * m * sizeof(double) >> 20) + " MiB, more than a quarter of the memory (" +
                            std::to_string(limit >> 20) + " MiB)");
  }
  if (gram_.rows() != static_cast<Eigen::Index>(m)) {
    gram_.conservativeResize(static_cast<Eigen::Index>(m), static_cast<Eigen::Index>(m));
  }
  gram_rows_ = fold(gram_rows_, gram_, stop);
  return gram_rows_ == m;
}

qp::GramView FactoredCutPool::gram() {
  updateGram();
  const Eigen::Index m = static_cast<Eigen::Index>(gram_rows_);
  return qp::GramView(gram_.data(), m, m, Eigen::OuterStride<>(std::max<Eigen::Index>(1, gram_.rows())));
}

size_t FactoredCutPool::memoryBytes() const {
  size_t bytes = sizeof(FactoredCutPool);
  for (const auto& row : rows_) bytes += row->bytes() + sizeof(std::unique_ptr<FactoredRow>);
  bytes += (lower_.capacity() + upper_.capacity() + a_w0_.capacity()) * sizeof(double);
  bytes += static_cast<size_t>(gram_.size()) * sizeof(double);
  bytes += layout_.blocks().size() * sizeof(FactorBlock) + layout_.restSegments().size() * sizeof(std::pair<int64_t, int64_t>);
  bytes += warm_.row_ids.capacity() * sizeof(int64_t) +
           (warm_.row_signs.capacity() + warm_.bound_vars.capacity() + warm_.bound_signs.capacity()) * sizeof(int);
  return bytes;
}

const std::vector<double>& FactoredCutPool::activityAt(const double* w0) {
  const uint64_t key = Fingerprint(w0, n());
  a_w0_.resize(rows_.size());
  std::vector<size_t> stale_factored;
  for (size_t i = 0; i < rows_.size(); ++i) {
    FactoredRow& row = *rows_[i];
    if (row.w0_key == key) continue;
    if (row.dense) {
      row.a_w0 = row.dense_f32.empty() ? DenseDotN(row.dense_f64.data(), w0, n()) : DenseDotN(row.dense_f32.data(), w0, n());
      row.w0_key = key;
    } else {
      stale_factored.push_back(i);
    }
  }
  if (!stale_factored.empty()) {
    std::vector<double> products(rows_.size());
    DenseAgainstPositions(layout_, w0, rows_, stale_factored, products.data());
    for (size_t i : stale_factored) {
      rows_[i]->a_w0 = products[i];
      rows_[i]->w0_key = key;
    }
  }
  for (size_t i = 0; i < rows_.size(); ++i) a_w0_[i] = rows_[i]->a_w0;
  return a_w0_;
}

qp::CutQpProblem FactoredCutPool::problem(const double* w0, bool with_gram) {
  if (with_gram) updateGram();
  activityAt(w0);
  qp::CutQpProblem p;
  p.n = n();
  p.m = size();
  p.rows = this;
  p.row_lower = lower_.data();
  p.row_upper = upper_.data();
  p.w0 = w0;
  if (with_gram) {
    p.gram = gram_.data();
    p.gram_stride = std::max<Eigen::Index>(1, gram_.rows());
  }
  p.a_w0 = a_w0_.data();
  p.costly_rows = true;
  return p;
}

void FactoredCutPool::recordSolve(const Eigen::VectorXd& y) {
  if (y.size() != static_cast<Eigen::Index>(rows_.size())) return;
  for (size_t i = 0; i < rows_.size(); ++i) {
    const double yi = y[static_cast<Eigen::Index>(i)];
    rows_[i]->last_multiplier = yi;
    rows_[i]->inactive_solves = yi == 0.0 ? rows_[i]->inactive_solves + 1 : 0;
  }
}

void FactoredCutPool::multiply(const double* x, double* y) const {
  std::vector<size_t> factored;
  for (size_t i = 0; i < rows_.size(); ++i) {
    const FactoredRow& row = *rows_[i];
    if (!row.dense) {
      factored.push_back(i);
    } else {
      y[i] = row.dense_f32.empty() ? DenseDotN(row.dense_f64.data(), x, n()) : DenseDotN(row.dense_f32.data(), x, n());
    }
  }
  DenseAgainstPositions(layout_, x, rows_, factored, y);
}

void FactoredCutPool::multiplyTransposeAdd(const double* y, double scale, double* x) const {
  const int64_t n = layout_.n();
  std::vector<size_t> factored;
  for (size_t i = 0; i < rows_.size(); ++i) {
    const double coef = scale * y[i];
    if (coef == 0.0) continue;
    const FactoredRow& row = *rows_[i];
    if (!row.dense) {
      factored.push_back(i);
    } else if (row.dense_f32.empty()) {
      AddDense(row.dense_f64.data(), n, coef, x);
    } else {
      AddDense(row.dense_f32.data(), n, coef, x);
    }
  }
  if (factored.empty()) return;
  std::vector<const FactoredRow*> list;
  for (size_t i : factored) list.push_back(rows_[i].get());
  int64_t factor_at = 0;
  for (const FactorBlock& block : layout_.blocks()) {
    // x_B += Σ_i coef_i x_i d_iᵀ = Σ_g x_g (Σ_{i∈g} coef_i d_i)ᵀ over the distinct x's: X_u D_gᵀ.
    std::vector<int> group;
    const Eigen::MatrixXd xu = DistinctX(list, factor_at, block.rows, group);  // rows × g
    RowMajor dg = RowMajor::Zero(xu.cols(), block.cols);
    for (size_t t = 0; t < factored.size(); ++t) {
      const double coef = scale * y[factored[t]];
      const float* d = list[t]->factors.data() + factor_at + block.rows;
      for (int q = 0; q < block.cols; ++q) dg(group[t], q) += coef * static_cast<double>(d[q]);
    }
    Eigen::Map<RowMajor> xb(x + block.offset, block.rows, block.cols);
    xb.noalias() += xu * dg;
    factor_at += block.rows + block.cols;
  }
  int64_t at = 0;
  for (const auto& [offset, length] : layout_.restSegments()) {
    for (size_t i : factored) {
      const double coef = scale * y[i];
      const float* r = rows_[i]->rest.data() + at;
      for (int64_t q = 0; q < length; ++q) x[offset + q] += coef * static_cast<double>(r[q]);
    }
    at += length;
  }
}

void FactoredCutPool::weightedGram(const double* weights, Eigen::MatrixXd& gram) const {
  if (weights) throw std::invalid_argument("the factored cut pool supports D = I only (no weighted Gram matrix)");
  const Eigen::Index m = static_cast<Eigen::Index>(rows_.size());
  gram.resize(m, m);
  fold(0, gram, {});
}

double FactoredCutPool::entry(int row, int col) const {
  const FactoredRow& r = *rows_[static_cast<size_t>(row)];
  if (r.dense) return r.dense_f32.empty() ? r.dense_f64[static_cast<size_t>(col)] : r.dense_f32[static_cast<size_t>(col)];
  int64_t factor_at = 0;
  for (const FactorBlock& block : layout_.blocks()) {
    if (col >= block.offset && col < block.offset + block.size()) {
      const int64_t local = col - block.offset;
      const float* f = r.factors.data() + factor_at;
      return static_cast<double>(f[local / block.cols]) * static_cast<double>(f[block.rows + local % block.cols]);
    }
    factor_at += block.rows + block.cols;
  }
  int64_t at = 0;
  for (const auto& [offset, length] : layout_.restSegments()) {
    if (col >= offset && col < offset + length) return r.rest[static_cast<size_t>(at + col - offset)];
    at += length;
  }
  return 0.0;
}

double FactoredCutPool::columnDot(int col, const double* y) const {
  double sum = 0;
  for (size_t i = 0; i < rows_.size(); ++i) {
    if (y[i] != 0) sum += entry(static_cast<int>(i), col) * y[i];
  }
  return sum;
}

void FactoredCutPool::addColumn(int col, double scale, double* y) const {
  for (size_t i = 0; i < rows_.size(); ++i) y[i] += scale * entry(static_cast<int>(i), col);
}

}  // namespace advcorrect::cuts
