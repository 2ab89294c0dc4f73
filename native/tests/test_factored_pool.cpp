// C++ checks of the factored cut pool (cuts/factored_pool.h): its Gram matrix against a naive
// A·Aᵀ over the expanded rows (factored, dense float32 and float64 rows, layouts with and
// without rest coordinates, in one fold and incrementally, after removals), A·x and Aᵀ·y against
// the expanded rows, and the dual solve against the stored CutPool holding the same rows.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cuts/cut_pool.h"
#include "cuts/factored_pool.h"
#include "cuts/factored_pool_solve.h"
#include "cuts/pool_solve.h"
#include "tests/check.h"

using advcorrect::cuts::CutPool;
using advcorrect::cuts::FactorBlock;
using advcorrect::cuts::FactoredCutPool;
using advcorrect::testing::Check;

namespace {

// The pool's rows expanded to an m × n matrix, entry by entry through entry() (no code shared
// with the fold) and through ExpandFactoredRow; both must agree.
Eigen::MatrixXd Expanded(const FactoredCutPool& pool) {
  Eigen::MatrixXd a(pool.size(), pool.n());
  std::vector<double> row(static_cast<size_t>(pool.n()));
  for (int i = 0; i < pool.size(); ++i) {
    advcorrect::cuts::ExpandFactoredRow(pool.layout(), pool.row(i), row.data());
    for (int j = 0; j < pool.n(); ++j) {
      a(i, j) = row[static_cast<size_t>(j)];
      if (pool.entry(i, j) != row[static_cast<size_t>(j)]) {
        Check(false, "entry(" + std::to_string(i) + ", " + std::to_string(j) + ") differs from the expanded row");
        return a;
      }
    }
  }
  return a;
}

double RelativeError(const Eigen::MatrixXd& got, const Eigen::MatrixXd& want) {
  const double scale = std::max(1.0, want.cwiseAbs().maxCoeff());
  return (got - want).cwiseAbs().maxCoeff() / scale;
}

// Appends `count` rows: factored with probability 1 − dense_share, else dense (float32 or float64).
void AppendRandom(FactoredCutPool& pool, std::mt19937& rng, int count, double dense_share) {
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> uniform(0, 1);
  for (int r = 0; r < count; ++r) {
    const double u = uniform(rng);
    const double upper = normal(rng);
    if (u < dense_share / 2) {
      std::vector<float> v(static_cast<size_t>(pool.n()));
      for (float& x : v) x = static_cast<float>(normal(rng));
      pool.appendDense(v.data(), -advcorrect::qp::kInfinity, upper);
    } else if (u < dense_share) {
      std::vector<double> v(static_cast<size_t>(pool.n()));
      for (double& x : v) x = normal(rng);
      pool.appendDense(v.data(), -advcorrect::qp::kInfinity, upper);
    } else {
      std::vector<float> f(static_cast<size_t>(pool.layout().factorSize()));
      std::vector<float> rest(static_cast<size_t>(pool.layout().restSize()));
      // ReLU-like zeros in the factors, as real layer inputs have.
      for (float& x : f) x = uniform(rng) < 0.3 ? 0.0f : static_cast<float>(normal(rng));
      for (float& x : rest) x = static_cast<float>(normal(rng));
      // Half the time the x factors of the last factored row (the wrong classes of one example
      // share the layer inputs), which the products group.
      const int last = pool.size() - 1;
      if (last >= 0 && !pool.row(last).dense && uniform(rng) < 0.5) {
        int64_t at = 0;
        for (const FactorBlock& block : pool.layout().blocks()) {
          std::copy_n(pool.row(last).factors.data() + at, block.rows, f.data() + at);
          at += block.rows + block.cols;
        }
      }
      pool.appendFactored(f.data(), static_cast<int64_t>(f.size()), rest.data(), static_cast<int64_t>(rest.size()), -advcorrect::qp::kInfinity, upper);
    }
  }
}

}  // namespace

namespace {

void CheckGram(FactoredCutPool& pool, const std::string& what) {
  const Eigen::MatrixXd a = Expanded(pool);
  const Eigen::MatrixXd naive = a * a.transpose();
  const Eigen::MatrixXd got = pool.gram();
  Check(got.rows() == naive.rows(), what + ": G has " + std::to_string(got.rows()) + " rows");
  if (got.rows() != naive.rows()) return;
  const double error = RelativeError(got, naive);
  Check(error < 1e-12, what + ": G differs from the naive A·Aᵀ by " + std::to_string(error));
  Eigen::MatrixXd full;
  pool.weightedGram(nullptr, full);
  Check(RelativeError(full, naive) < 1e-12, what + ": weightedGram(nullptr) differs from A·Aᵀ");
}

void CheckProducts(const FactoredCutPool& pool, std::mt19937& rng, const std::string& what) {
  std::normal_distribution<double> normal;
  const Eigen::MatrixXd a = Expanded(pool);
  Eigen::VectorXd x(pool.n()), y(pool.size());
  for (Eigen::Index j = 0; j < x.size(); ++j) x[j] = normal(rng);
  for (Eigen::Index i = 0; i < y.size(); ++i) y[i] = i % 3 == 1 ? 0.0 : normal(rng);
  Eigen::VectorXd ax(pool.size());
  pool.multiply(x.data(), ax.data());
  Check(RelativeError(ax, a * x) < 1e-12, what + ": A·x");
  Eigen::VectorXd aty = x;
  pool.multiplyTransposeAdd(y.data(), -0.5, aty.data());
  Check(RelativeError(aty, x - 0.5 * a.transpose() * y) < 1e-12, what + ": x − ½Aᵀy");
  const int col = pool.n() / 2;
  Check(std::abs(pool.columnDot(col, y.data()) - a.col(col).dot(y)) < 1e-12 * std::max(1.0, a.col(col).cwiseAbs().sum()),
        what + ": columnDot");
}

// Layouts: blocks with rest between and after them, one block covering everything, an MLP.
struct Layout {
  std::string name;
  int n;
  std::vector<FactorBlock> blocks;
};

std::vector<Layout> Layouts() {
  // MLP 20–9–7–3: kernel [20, 9], bias 9, kernel [9, 7], bias 7, kernel [7, 3], bias 3.
  const int k1 = 0, b1 = 180, k2 = 189, b2 = 252, k3 = 259, b3 = 280;
  (void)b1;
  (void)b2;
  (void)b3;
  return {
      {"gaps", 37, {{0, 3, 4}, {15, 5, 2}}},
      {"one block, no rest", 12, {{0, 3, 4}}},
      {"mlp 20-9-7-3", 283, {{k1, 20, 9}, {k2, 9, 7}, {k3, 7, 3}}},
      {"no blocks", 19, {}},
  };
}

void TestLayouts() {
  const advcorrect::cuts::FactoredLayout gaps(37, {{0, 3, 4}, {15, 5, 2}});
  Check(gaps.restSize() == 37 - 12 - 10, "rest size of the gaps layout");
  Check(gaps.factorSize() == 3 + 4 + 5 + 2, "factor size of the gaps layout");
  Check(gaps.restSegments().size() == 2 && gaps.restSegments()[0].first == 12 && gaps.restSegments()[0].second == 3 &&
            gaps.restSegments()[1].first == 25 && gaps.restSegments()[1].second == 12,
        "rest segments of the gaps layout");
  const auto throws = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const std::invalid_argument&) {
      return true;
    }
    return false;
  };
  Check(throws([] { FactoredCutPool p(10, {{0, 3, 4}, {11, 1, 1}}); }), "a block beyond n is refused");
  Check(throws([] { FactoredCutPool p(30, {{0, 3, 4}, {10, 1, 1}}); }), "overlapping blocks are refused");
  Check(throws([] { FactoredCutPool p(30, {{5, 0, 4}}); }), "an empty block is refused");
  FactoredCutPool pool(37, {{0, 3, 4}, {15, 5, 2}});
  std::vector<float> f(13), rest(15);
  Check(throws([&] { pool.appendFactored(f.data(), 13, rest.data(), 15, -advcorrect::qp::kInfinity, 0); }),
        "factors of the wrong length are refused");
  std::vector<float> f14(14);
  f14[3] = NAN;
  Check(throws([&] { pool.appendFactored(f14.data(), 14, rest.data(), 15, -advcorrect::qp::kInfinity, 0); }),
        "NaN factors are refused");
  Check(pool.size() == 0, "nothing was stored");
}

void TestGramAndProducts() {
  std::mt19937 rng(7);
  for (const Layout& layout : Layouts()) {
    FactoredCutPool pool(layout.n, layout.blocks);
    AppendRandom(pool, rng, 9, 0.25);
    CheckGram(pool, layout.name + ", one fold");
    AppendRandom(pool, rng, 5, 0.25);
    AppendRandom(pool, rng, 1, 1.0);
    CheckGram(pool, layout.name + ", incremental");
    const std::vector<int64_t> ids = pool.ids();
    Check(pool.remove({ids[0], ids[4], ids[11], 9999}) == 3, layout.name + ": three rows removed");
    CheckGram(pool, layout.name + ", after removal");
    AppendRandom(pool, rng, 3, 0.3);
    CheckGram(pool, layout.name + ", appended after removal");
    CheckProducts(pool, rng, layout.name);
    // A stop before the first step keeps nothing; the next fold is complete.
    AppendRandom(pool, rng, 2, 0.5);
    Check(!pool.updateGram([] { return true; }), layout.name + ": a stopped fold reports it");
    CheckGram(pool, layout.name + ", after a stopped fold");
  }
}

// The same rows in the factored pool and (expanded, float64) in the stored CutPool: the dual
// solves agree to the solver's tolerance, cold and warm after more rows.
void TestSolveAgainstStored() {
  std::mt19937 rng(11);
  std::normal_distribution<double> normal;
  const Layout layout = Layouts()[2];
  FactoredCutPool factored(layout.n, layout.blocks);
  CutPool stored(layout.n);
  Eigen::VectorXd w0(layout.n);
  for (Eigen::Index j = 0; j < w0.size(); ++j) w0[j] = normal(rng);
  const auto add = [&](int count) {
    const int before = factored.size();
    AppendRandom(factored, rng, count, 0.2);
    // Move the bounds so that about half of the new rows are violated at w₀.
    std::vector<double> row(static_cast<size_t>(layout.n));
    for (int i = before; i < factored.size(); ++i) {
      advcorrect::cuts::ExpandFactoredRow(factored.layout(), factored.row(i), row.data());
      Eigen::Map<const Eigen::VectorXd> a(row.data(), layout.n);
      const double upper = a.dot(w0) + (i % 2 ? -1.0 : 0.5) * a.norm();
      stored.appendDense(row.data(), -advcorrect::qp::kInfinity, upper);
    }
  };
  // `factored` makes the random rows; `same` holds them with the stored pool's bounds.
  add(12);
  FactoredCutPool same(layout.n, layout.blocks);
  const auto copy_rows = [&](int from) {
    for (int i = from; i < factored.size(); ++i) {
      const advcorrect::cuts::FactoredRow& r = factored.row(i);
      const double upper = stored.upper()[static_cast<size_t>(i)];
      if (r.dense) {
        if (r.dense_f32.empty()) same.appendDense(r.dense_f64.data(), -advcorrect::qp::kInfinity, upper);
        else same.appendDense(r.dense_f32.data(), -advcorrect::qp::kInfinity, upper);
      } else {
        same.appendFactored(r.factors.data(), static_cast<int64_t>(r.factors.size()), r.rest.data(),
                            static_cast<int64_t>(r.rest.size()), -advcorrect::qp::kInfinity, upper);
      }
    }
  };
  copy_rows(0);
  const auto compare = [&](const std::string& what) {
    advcorrect::qp::CutQpSettings settings;
    const auto a = advcorrect::cuts::SolveDualOnFactoredPool(same, w0.data(), settings, {});
    const auto b = advcorrect::cuts::SolveDualOnPool(stored, w0.data(), settings, {});
    Check(a.status == advcorrect::qp::CutQpStatus::kSolved, what + ": factored solve status " + advcorrect::qp::StatusName(a.status));
    Check(a.status == b.status, what + ": same status");
    if (a.x.size() != b.x.size()) return;
    const double scale = std::max(1.0, b.x.cwiseAbs().maxCoeff());
    Check((a.x - b.x).cwiseAbs().maxCoeff() < 1e-8 * scale, what + ": same w (diff " + std::to_string((a.x - b.x).cwiseAbs().maxCoeff()) + ")");
    Check(std::abs(a.objective - b.objective) < 1e-8 * std::max(1.0, b.objective), what + ": same objective");
    Check((a.y - b.y).cwiseAbs().maxCoeff() < 1e-6 * std::max(1.0, b.y.cwiseAbs().maxCoeff()), what + ": same multipliers");
    Check(a.residuals.primal < 1e-7 && a.residuals.dual < 1e-7, what + ": small residuals");
  };
  compare("cold");
  const int before = factored.size();
  add(6);
  copy_rows(before);
  compare("warm after 6 more rows");
  const std::vector<int64_t> ids = same.ids();
  same.remove({ids[1], ids[2]});
  stored.remove({stored.ids()[1], stored.ids()[2]});
  compare("after removing two rows");
}

}  // namespace

int main() {
  TestLayouts();
  TestGramAndProducts();
  TestSolveAgainstStored();
  return advcorrect::testing::Report();
}
