// C++ checks of the Gram fold (cuts/gram.h) on its own: G = A diag(weights) Aᵀ from GramRange
// against a naive triple loop, for dense float32/float64 rows and sparse rows (both below and
// above the density at which the fold expands them), with and without weights, lengths that
// are and are not a multiple of the SIMD width, in one fold and in several incremental ones.
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cuts/gram.h"
#include "cuts/simd_dot.h"
#include "tests/check.h"

using advcorrect::cuts::CutRow;
using advcorrect::cuts::GramMap;
using advcorrect::cuts::GramRange;
using advcorrect::testing::Check;

namespace {

using Rows = std::vector<std::unique_ptr<CutRow>>;

enum class Kind { kDenseF32, kDenseF64, kSparseF32, kSparseF64 };

// A random row of the given kind; sparse rows keep each column with probability `density`.
std::unique_ptr<CutRow> RandomRow(std::mt19937& rng, int n, Kind kind, double density) {
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> uniform(0, 1);
  if (kind == Kind::kDenseF32 || kind == Kind::kDenseF64) {
    std::vector<double> v(static_cast<size_t>(n));
    for (double& x : v) x = normal(rng);
    if (kind == Kind::kDenseF64) return advcorrect::cuts::MakeDenseRow(v.data(), n, -1, 1);
    std::vector<float> f(v.begin(), v.end());
    return advcorrect::cuts::MakeDenseRow(f.data(), n, -1, 1);
  }
  std::vector<int32_t> index;
  std::vector<double> v;
  for (int j = 0; j < n; ++j) {
    if (uniform(rng) < density) {
      index.push_back(j);
      v.push_back(normal(rng));
    }
  }
  const int nnz = static_cast<int>(index.size());
  if (kind == Kind::kSparseF64) return advcorrect::cuts::MakeSparseRow(index.data(), v.data(), nnz, n, -1, 1);
  std::vector<float> f(v.begin(), v.end());
  return advcorrect::cuts::MakeSparseRow(index.data(), f.data(), nnz, n, -1, 1);
}

// The rows as a dense m × n matrix, entry by entry (no code shared with the fold).
Eigen::MatrixXd Dense(const Rows& rows, int n) {
  Eigen::MatrixXd a = Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(rows.size()), n);
  for (size_t i = 0; i < rows.size(); ++i) {
    for (int j = 0; j < n; ++j) a(static_cast<Eigen::Index>(i), j) = rows[i]->entry(j);
  }
  return a;
}

// G(i, k) = Σ_j a_ij weights_j a_kj by plain loops.
Eigen::MatrixXd NaiveGram(const Eigen::MatrixXd& a, const std::vector<double>* weights) {
  const Eigen::Index m = a.rows();
  Eigen::MatrixXd g(m, m);
  for (Eigen::Index i = 0; i < m; ++i) {
    for (Eigen::Index k = 0; k < m; ++k) {
      double sum = 0;
      for (Eigen::Index j = 0; j < a.cols(); ++j) sum += a(i, j) * (weights ? (*weights)[static_cast<size_t>(j)] : 1.0) * a(k, j);
      g(i, k) = sum;
    }
  }
  return g;
}

// Folds `rows` into a fresh G in the steps given (cumulative row counts, the last = m), with
// a leading dimension larger than m, and compares with the naive product.
void CheckFold(const Rows& rows, int n, const std::vector<double>* weights, const std::vector<size_t>& steps,
               const std::string& name) {
  const size_t m = rows.size();
  const Eigen::Index stride = static_cast<Eigen::Index>(m) + 3;
  std::vector<double> storage(static_cast<size_t>(stride) * m, std::nan(""));
  size_t done = 0;
  for (size_t upto : steps) {
    // GramRange sees the first `upto` rows, as CutPool does after appends.
    Rows prefix;
    for (size_t i = 0; i < upto; ++i) prefix.push_back(std::make_unique<CutRow>(*rows[i]));
    const Eigen::Index s = static_cast<Eigen::Index>(upto);
    const size_t complete = GramRange(prefix, n, weights ? weights->data() : nullptr, done,
                                      GramMap(storage.data(), s, s, Eigen::OuterStride<>(stride)), {});
    Check(complete == upto, name + ": fold reported " + std::to_string(complete) + " of " + std::to_string(upto) + " rows");
    done = upto;
  }
  const Eigen::Index mm = static_cast<Eigen::Index>(m);
  const Eigen::MatrixXd got = GramMap(storage.data(), mm, mm, Eigen::OuterStride<>(stride));
  const Eigen::MatrixXd expected = NaiveGram(Dense(rows, n), weights);
  const double scale = std::max(1.0, expected.lpNorm<Eigen::Infinity>());
  const double err = (got - expected).lpNorm<Eigen::Infinity>() / scale;
  // NaN (an entry never written) fails the comparison too.
  Check(err < 1e-12, name + ": relative error " + std::to_string(err));
  Check((got - got.transpose()).lpNorm<Eigen::Infinity>() == 0.0, name + ": G not symmetric");
}

}  // namespace

int main() {
  std::mt19937 rng(2409);
  std::uniform_real_distribution<double> positive(0.5, 2.0);
  const int lanes = advcorrect::cuts::kLanes;
  // Lengths around the SIMD width and the 4-lane unrolled step, and past one column chunk.
  const std::vector<int> lengths = {1, 2, 3, lanes - 1 > 0 ? lanes - 1 : 1, lanes, lanes + 1, 4 * lanes - 1,
                                    4 * lanes + 3, 61, 257, 2048 + 5};
  const std::vector<std::pair<Kind, double>> kinds = {{Kind::kDenseF32, 1},    {Kind::kDenseF64, 1},
                                                      {Kind::kSparseF32, 0.5}, {Kind::kSparseF64, 0.5},
                                                      {Kind::kSparseF32, 0.03}, {Kind::kSparseF64, 0.03}};
  for (int n : lengths) {
    std::vector<double> weights(static_cast<size_t>(n));
    for (double& w : weights) w = positive(rng);
    // One kind at a time: float32 dense rows without weights take the fold's copy-free path.
    for (size_t k = 0; k < kinds.size(); ++k) {
      Rows rows;
      for (int i = 0; i < 7; ++i) rows.push_back(RandomRow(rng, n, kinds[k].first, kinds[k].second));
      const std::string name = "n=" + std::to_string(n) + " kind " + std::to_string(k);
      CheckFold(rows, n, nullptr, {7}, name + " one fold");
      CheckFold(rows, n, &weights, {7}, name + " weighted");
      CheckFold(rows, n, nullptr, {1, 2, 6, 7}, name + " incremental");
    }
    // Mixed kinds, and more than 16 new rows at once with weights (the tiled GEMM path).
    Rows mixed;
    for (int i = 0; i < 23; ++i) {
      const auto& kind = kinds[static_cast<size_t>(i) % kinds.size()];
      mixed.push_back(RandomRow(rng, n, kind.first, kind.second));
    }
    const std::string name = "n=" + std::to_string(n) + " mixed";
    CheckFold(mixed, n, nullptr, {23}, name + " one fold");
    CheckFold(mixed, n, &weights, {23}, name + " weighted");
    CheckFold(mixed, n, &weights, {3, 4, 22, 23}, name + " weighted incremental");
    CheckFold(mixed, n, nullptr, {5, 23}, name + " incremental");
  }
  // A sparse row with no entries at all gives a zero row and column.
  {
    const int n = 9;
    Rows rows;
    rows.push_back(RandomRow(rng, n, Kind::kDenseF64, 1));
    rows.push_back(advcorrect::cuts::MakeSparseRow(static_cast<const int32_t*>(nullptr), static_cast<const double*>(nullptr), 0, n, -1, 1));
    CheckFold(rows, n, nullptr, {2}, "empty sparse row");
  }
  return advcorrect::testing::Report();
}
