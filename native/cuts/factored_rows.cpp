// The rows of the factored cut pool: layout, checked constructors and the algebra of factored
// rows (dots, products with dense vectors, expansion). See factored_pool.h.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "cuts/factored_pool.h"

namespace advcorrect::cuts {

namespace {

using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Rows of a float32 block converted to float64 at a time (a chunk of 4096 columns is 8 MB).
constexpr int64_t kChunkValues = int64_t{1} << 20;

void CheckRowBounds(double lower, double upper) {
  if (std::isnan(lower) || std::isnan(upper)) throw std::invalid_argument("row bounds must not be NaN");
  if (lower > upper) throw std::invalid_argument("row lower bound exceeds its upper bound");
  if (lower == qp::kInfinity || upper == -qp::kInfinity) {
    throw std::invalid_argument("row bounds must not be +Infinity (lower) or -Infinity (upper)");
  }
}

template <typename T>
bool Finite(const T* v, int64_t count) {
  for (int64_t k = 0; k < count; ++k) {
    if (!std::isfinite(static_cast<double>(v[k]))) return false;
  }
  return true;
}

template <typename A, typename B>
double PlainDot(const A* a, const B* b, int64_t count) {
  double sum = 0;
  for (int64_t k = 0; k < count; ++k) sum += static_cast<double>(a[k]) * static_cast<double>(b[k]);
  return sum;
}

// u.row(r) · d for a float32 d of u.cols() values.
double RowDot(const Eigen::MatrixXd& u, int r, const float* d) {
  double sum = 0;
  for (Eigen::Index q = 0; q < u.cols(); ++q) sum += u(r, q) * static_cast<double>(d[q]);
  return sum;
}

template <typename T>
std::unique_ptr<FactoredRow> MakeDenseOf(const FactoredLayout& layout, const T* values, double lower, double upper) {
  CheckRowBounds(lower, upper);
  if (!Finite(values, layout.n())) throw std::invalid_argument("row values must be finite");
  auto row = std::make_unique<FactoredRow>();
  row->lower = lower;
  row->upper = upper;
  row->dense = true;
  if constexpr (std::is_same_v<T, float>) {
    row->dense_f32.assign(values, values + layout.n());
  } else {
    row->dense_f64.assign(values, values + layout.n());
  }
  return row;
}

// The rest coordinates of v (n values) as float64, in order.
template <typename T>
Eigen::VectorXd GatherRest(const FactoredLayout& layout, const T* v) {
  Eigen::VectorXd out(layout.restSize());
  int64_t at = 0;
  for (const auto& [offset, length] : layout.restSegments()) {
    for (int64_t k = 0; k < length; ++k) out[at + k] = static_cast<double>(v[offset + k]);
    at += length;
  }
  return out;
}

}  // namespace

Eigen::MatrixXd DistinctX(const std::vector<const FactoredRow*>& rows, int64_t factor_at, int length,
                          std::vector<int>& group) {
  // Rows with bitwise equal x share a column; a hash of the bytes finds the candidates.
  group.assign(rows.size(), -1);
  std::vector<const float*> distinct;
  std::vector<uint64_t> hashes;
  for (size_t t = 0; t < rows.size(); ++t) {
    const float* x = rows[t]->factors.data() + factor_at;
    uint64_t h = 1469598103934665603ULL;
    const unsigned char* bytes = reinterpret_cast<const unsigned char*>(x);
    for (size_t b = 0; b < sizeof(float) * static_cast<size_t>(length); ++b) h = (h ^ bytes[b]) * 1099511628211ULL;
    for (size_t g = 0; g < distinct.size(); ++g) {
      if (hashes[g] == h && std::memcmp(distinct[g], x, sizeof(float) * static_cast<size_t>(length)) == 0) {
        group[t] = static_cast<int>(g);
        break;
      }
    }
    if (group[t] < 0) {
      group[t] = static_cast<int>(distinct.size());
      distinct.push_back(x);
      hashes.push_back(h);
    }
  }
  Eigen::MatrixXd xu(length, static_cast<Eigen::Index>(distinct.size()));
  for (size_t g = 0; g < distinct.size(); ++g) {
    for (int p = 0; p < length; ++p) xu(p, static_cast<Eigen::Index>(g)) = distinct[g][p];
  }
  return xu;
}

FactoredLayout::FactoredLayout(int n, std::vector<FactorBlock> blocks) : n_(n), blocks_(std::move(blocks)) {
  if (n <= 0) throw std::invalid_argument("the number of variables must be a positive integer");
  int64_t at = 0;
  for (size_t b = 0; b < blocks_.size(); ++b) {
    const FactorBlock& block = blocks_[b];
    if (block.rows < 1 || block.cols < 1) throw std::invalid_argument("a factor block needs rows and cols ≥ 1");
    if (block.offset < at) throw std::invalid_argument("factor blocks must be ordered by offset and must not overlap");
    if (block.offset + block.size() > n) throw std::invalid_argument("factor block " + std::to_string(b) + " does not fit in n");
    if (block.offset > at) rest_.emplace_back(at, block.offset - at);
    at = block.offset + block.size();
    factor_size_ += block.rows + block.cols;
  }
  if (at < n) rest_.emplace_back(at, n - at);
  for (const auto& segment : rest_) rest_size_ += segment.second;
}

size_t FactoredRow::bytes() const {
  return sizeof(FactoredRow) + factors.capacity() * sizeof(float) + rest.capacity() * sizeof(float) +
         dense_f32.capacity() * sizeof(float) + dense_f64.capacity() * sizeof(double);
}

std::unique_ptr<FactoredRow> MakeFactoredRow(const FactoredLayout& layout, const float* factors, int64_t factor_count,
                                             const float* rest, int64_t rest_count, double lower, double upper) {
  CheckRowBounds(lower, upper);
  if (factor_count != layout.factorSize()) {
    throw std::invalid_argument("factors must have length " + std::to_string(layout.factorSize()) + ", got " +
                                std::to_string(factor_count));
  }
  if (rest_count != layout.restSize()) {
    throw std::invalid_argument("rest must have length " + std::to_string(layout.restSize()) + ", got " +
                                std::to_string(rest_count));
  }
  if (!Finite(factors, factor_count) || !Finite(rest, rest_count)) throw std::invalid_argument("row values must be finite");
  auto row = std::make_unique<FactoredRow>();
  row->lower = lower;
  row->upper = upper;
  row->factors.assign(factors, factors + factor_count);
  row->rest.assign(rest, rest + rest_count);
  return row;
}
std::unique_ptr<FactoredRow> MakeDenseFactoredRow(const FactoredLayout& layout, const float* values, double lower,
                                                  double upper) {
  return MakeDenseOf(layout, values, lower, upper);
}
std::unique_ptr<FactoredRow> MakeDenseFactoredRow(const FactoredLayout& layout, const double* values, double lower,
                                                  double upper) {
  return MakeDenseOf(layout, values, lower, upper);
}

double FactoredRowDot(const FactoredLayout& layout, const FactoredRow& a, const FactoredRow& b) {
  if (a.dense && b.dense) {
    const int64_t n = layout.n();
    double sum = 0;
    // Threads split the coordinates of a long dense pair.
#pragma omp parallel for reduction(+ : sum) schedule(static) if (n > (1 << 16))
    for (int64_t j = 0; j < n; ++j) {
      const double u = a.dense_f32.empty() ? a.dense_f64[static_cast<size_t>(j)] : a.dense_f32[static_cast<size_t>(j)];
      const double v = b.dense_f32.empty() ? b.dense_f64[static_cast<size_t>(j)] : b.dense_f32[static_cast<size_t>(j)];
      sum += u * v;
    }
    return sum;
  }
  if (a.dense || b.dense) {
    const FactoredRow& d = a.dense ? a : b;
    const FactoredRow& f = a.dense ? b : a;
    double out = 0;
    if (d.dense_f32.empty()) {
      DenseAgainstFactored(layout, d.dense_f64.data(), {&f}, &out);
    } else {
      DenseAgainstFactored(layout, d.dense_f32.data(), {&f}, &out);
    }
    return out;
  }
  // ⟨x₁⊗d₁, x₂⊗d₂⟩ = (x₁·x₂)(d₁·d₂), block by block, plus the rest.
  double sum = 0;
  const float* fa = a.factors.data();
  const float* fb = b.factors.data();
  for (const FactorBlock& block : layout.blocks()) {
    const double xx = PlainDot(fa, fb, block.rows);
    const double dd = PlainDot(fa + block.rows, fb + block.rows, block.cols);
    sum += xx * dd;
    fa += block.rows + block.cols;
    fb += block.rows + block.cols;
  }
  return sum + PlainDot(a.rest.data(), b.rest.data(), layout.restSize());
}

template <typename T>
void DenseAgainstFactored(const FactoredLayout& layout, const T* v, const std::vector<const FactoredRow*>& rows,
                          double* out) {
  const Eigen::Index k = static_cast<Eigen::Index>(rows.size());
  if (k == 0) return;
  const Eigen::VectorXd rest = GatherRest(layout, v);
  for (Eigen::Index t = 0; t < k; ++t) {
    out[t] = rest.size() ? PlainDot(rows[static_cast<size_t>(t)]->rest.data(), rest.data(), rest.size()) : 0.0;
  }
  int64_t factor_at = 0;
  for (const FactorBlock& block : layout.blocks()) {
    // Rows of one example share x (the layer input) across wrong classes: U = X_uᵀ V_B over the
    // distinct x's (g × cols), then out_t += U_{group(t)} · d_t. One pass over V_B for all rows.
    std::vector<int> group;
    const Eigen::MatrixXd xu = DistinctX(rows, factor_at, block.rows, group);  // rows × g
    Eigen::MatrixXd u(xu.cols(), block.cols);
    if constexpr (std::is_same_v<T, double>) {
      Eigen::Map<const RowMajor> vb(v + block.offset, block.rows, block.cols);
      u.noalias() = xu.transpose() * vb;
    } else {
      u.setZero();
      const int chunk = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(block.rows, kChunkValues / block.cols)));
      RowMajor buffer(chunk, block.cols);
      for (int p0 = 0; p0 < block.rows; p0 += chunk) {
        const int len = std::min(chunk, block.rows - p0);
        const T* src = v + block.offset + static_cast<int64_t>(p0) * block.cols;
#pragma omp parallel for schedule(static) if (static_cast<int64_t>(len) * block.cols > (1 << 16))
        for (int p = 0; p < len; ++p) {
          for (int q = 0; q < block.cols; ++q) buffer(p, q) = static_cast<double>(src[static_cast<int64_t>(p) * block.cols + q]);
        }
        u.noalias() += xu.middleRows(p0, len).transpose() * buffer.topRows(len);
      }
    }
    for (Eigen::Index t = 0; t < k; ++t) {
      const float* d = rows[static_cast<size_t>(t)]->factors.data() + factor_at + block.rows;
      out[t] += RowDot(u, group[static_cast<size_t>(t)], d);
    }
    factor_at += block.rows + block.cols;
  }
}
template void DenseAgainstFactored<float>(const FactoredLayout&, const float*, const std::vector<const FactoredRow*>&,
                                          double*);
template void DenseAgainstFactored<double>(const FactoredLayout&, const double*, const std::vector<const FactoredRow*>&,
                                           double*);

void ExpandFactoredRow(const FactoredLayout& layout, const FactoredRow& row, double* out) {
  const int64_t n = layout.n();
  if (row.dense) {
    for (int64_t j = 0; j < n; ++j) out[j] = row.dense_f32.empty() ? row.dense_f64[static_cast<size_t>(j)] : row.dense_f32[static_cast<size_t>(j)];
    return;
  }
  const float* f = row.factors.data();
  for (const FactorBlock& block : layout.blocks()) {
    for (int p = 0; p < block.rows; ++p) {
      double* dst = out + block.offset + static_cast<int64_t>(p) * block.cols;
      for (int q = 0; q < block.cols; ++q) dst[q] = static_cast<double>(f[p]) * static_cast<double>(f[block.rows + q]);
    }
    f += block.rows + block.cols;
  }
  int64_t at = 0;
  for (const auto& [offset, length] : layout.restSegments()) {
    for (int64_t k = 0; k < length; ++k) out[offset + k] = row.rest[static_cast<size_t>(at + k)];
    at += length;
  }
}

}  // namespace advcorrect::cuts
