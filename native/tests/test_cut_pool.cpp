// C++ checks of the cut pool: Gram matrix exact after appends (dense/sparse, float32/float64)
// and removals, duplicates, products against a dense copy, CSR/CSC, input rejection.
#include <cmath>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/check.h"
#include "cuts/cut_pool.h"

using advcorrect::cuts::CutPool;

namespace {

using advcorrect::testing::Check;

// Dense copy of the pool's rows, rebuilt from CSR.
Eigen::MatrixXd DenseRows(const CutPool& pool) {
  std::vector<int64_t> ptr;
  std::vector<int32_t> cols;
  std::vector<double> vals;
  pool.toCsr(ptr, cols, vals);
  Eigen::MatrixXd a = Eigen::MatrixXd::Zero(pool.size(), pool.n());
  for (int i = 0; i < pool.size(); ++i) {
    for (int64_t k = ptr[static_cast<size_t>(i)]; k < ptr[static_cast<size_t>(i) + 1]; ++k) a(i, cols[static_cast<size_t>(k)]) = vals[static_cast<size_t>(k)];
  }
  return a;
}

void CheckGram(CutPool& pool, const Eigen::VectorXd& d, const std::string& when) {
  Eigen::MatrixXd a = DenseRows(pool);
  Eigen::MatrixXd expected = a * d.cwiseInverse().asDiagonal() * a.transpose();
  const double err = (pool.gram() - expected).lpNorm<Eigen::Infinity>() / std::max(1.0, expected.lpNorm<Eigen::Infinity>());
  Check(err < 1e-13, "Gram " + when + ": relative error " + std::to_string(err));
}

template <typename F>
void ExpectThrow(F&& f, const std::string& what) {
  bool threw = false;
  try {
    f();
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  Check(threw, "expected invalid_argument: " + what);
}


// Every way a fold can run: D = I with float32 dense appends (the rows themselves serve as the
// panel, any panel size), appends that hold a float64 or sparse row (a float64 panel: direct
// kernel up to 16 rows, tiles beyond), stored rows of every kind (float32/float64 dense, sparse
// dense enough for the kernels, very sparse), and n spanning several column chunks and an
// uneven SIMD tail.
void CheckFoldPaths() {
  std::mt19937 rng(11);
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> uni(0, 1);
  const int n = 4100 + 3;
  CutPool pool(n);
  const Eigen::VectorXd identity = Eigen::VectorXd::Ones(n);
  int appended = 0;
  auto append = [&](int kind) {
    const double density = kind == 2 ? 0.3 : 0.01;
    std::vector<double> dense(static_cast<size_t>(n));
    std::vector<int32_t> idx;
    std::vector<double> val;
    for (int j = 0; j < n; ++j) {
      const bool keep = kind < 2 || uni(rng) < density;
      if (!keep) continue;
      dense[static_cast<size_t>(j)] = normal(rng);
      idx.push_back(j);
      val.push_back(dense[static_cast<size_t>(j)]);
    }
    ++appended;
    switch (kind) {
      case 0: {
        std::vector<float> f(dense.begin(), dense.end());
        return pool.appendDense(f.data(), -advcorrect::qp::kInfinity, 1.0);
      }
      case 1: return pool.appendDense(dense.data(), -advcorrect::qp::kInfinity, 1.0);
      default: {
        std::vector<float> f(val.begin(), val.end());
        return pool.appendSparse(idx.data(), f.data(), static_cast<int>(idx.size()), -advcorrect::qp::kInfinity, 1.0);
      }
    }
  };
  // Stored rows of every kind, folded as one float64 panel of 23 rows (tiles).
  for (int i = 0; i < 23; ++i) append(i % 4);
  CheckGram(pool, identity, "fold paths: mixed first batch");
  // float32 dense appends of 1, 3, 6 and 40 rows: the rows are the panel.
  for (int batch : {1, 3, 6, 40}) {
    for (int i = 0; i < batch; ++i) append(0);
    CheckGram(pool, identity, "fold paths: " + std::to_string(batch) + " float32 rows");
  }
  // Small mixed appends: a float64 panel through the direct kernel.
  for (int kind : {1, 2, 3}) {
    append(0);
    append(kind);
    CheckGram(pool, identity, "fold paths: float32 + kind " + std::to_string(kind));
  }
  Check(pool.size() == appended, "fold paths: every row stored");
}

}  // namespace

int main() {
  std::mt19937 rng(7);
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> uni(0, 1);
  const int n = 257;
  CutPool pool(n);
  Eigen::VectorXd d(n);
  for (int j = 0; j < n; ++j) d[j] = 0.25 + uni(rng);
  pool.setDiagonal(d);

  auto append_random = [&](int i) {
    std::vector<double> dense(static_cast<size_t>(n));
    std::vector<int32_t> idx;
    std::vector<double> val;
    for (int j = 0; j < n; ++j) {
      if (uni(rng) < (i % 3 == 0 ? 0.05 : 0.4)) {
        idx.push_back(j);
        val.push_back(normal(rng));
        dense[static_cast<size_t>(j)] = val.back();
      }
    }
    switch (i % 4) {
      case 0: return pool.appendSparse(idx.data(), val.data(), static_cast<int>(idx.size()), -1.0, 1.0);
      case 1: {
        std::vector<float> f(val.begin(), val.end());
        return pool.appendSparse(idx.data(), f.data(), static_cast<int>(idx.size()), -advcorrect::qp::kInfinity, 1.0);
      }
      case 2: return pool.appendDense(dense.data(), -advcorrect::qp::kInfinity, 2.0);
      default: {
        std::vector<float> f(dense.begin(), dense.end());
        return pool.appendDense(f.data(), 0.0, 0.0);
      }
    }
  };

  for (int i = 0; i < 30; ++i) append_random(i);
  CheckGram(pool, d, "after first batch");
  for (int i = 30; i < 45; ++i) append_random(i);
  CheckGram(pool, d, "after incremental batch");
  std::vector<int64_t> ids = pool.ids();
  Check(pool.remove({ids[0], ids[10], ids[44], 123456}) == 3, "remove count");
  CheckGram(pool, d, "after removal");
  for (int i = 45; i < 50; ++i) append_random(i);
  ids = pool.ids();
  Check(pool.remove({ids[1], ids[ids.size() - 2]}) == 2, "remove with pending rows");
  CheckGram(pool, d, "after removal with pending rows");

  // Products against the dense copy.
  Eigen::MatrixXd a = DenseRows(pool);
  Eigen::VectorXd x = Eigen::VectorXd::Random(n);
  Eigen::VectorXd y(pool.size());
  pool.multiply(x.data(), y.data());
  Check((y - a * x).lpNorm<Eigen::Infinity>() < 1e-12, "multiply");
  Eigen::VectorXd v = Eigen::VectorXd::Random(pool.size());
  Eigen::VectorXd acc = Eigen::VectorXd::Ones(n);
  pool.multiplyTransposeAdd(v.data(), 2.0, acc.data());
  Check((acc - (Eigen::VectorXd::Ones(n) + 2.0 * a.transpose() * v)).lpNorm<Eigen::Infinity>() < 1e-12, "multiplyTransposeAdd");
  Eigen::MatrixXd wg;
  pool.weightedGram(d.data(), wg);
  Check((wg - a * d.asDiagonal() * a.transpose()).lpNorm<Eigen::Infinity>() < 1e-10, "weightedGram");
  const CutPool::Csc& csc = pool.csc();
  double csc_err = 0;
  for (int j = 0; j < n; ++j) {
    for (int64_t k = csc.col_ptr[static_cast<size_t>(j)]; k < csc.col_ptr[static_cast<size_t>(j) + 1]; ++k) {
      csc_err = std::max(csc_err, std::abs(csc.values[static_cast<size_t>(k)] - a(csc.row_index[static_cast<size_t>(k)], j)));
    }
  }
  Check(csc_err == 0 && csc.col_ptr.back() == static_cast<int64_t>((a.array() != 0).count()), "CSC matches rows");

  // Duplicates: an exact copy and a scaled copy of row 0 go; G stays exact.
  const int before = pool.size();
  {
    std::vector<double> row0(static_cast<size_t>(n));
    Eigen::VectorXd r0 = a.row(0).transpose();
    for (int j = 0; j < n; ++j) row0[static_cast<size_t>(j)] = 4.0 * r0[j];
    pool.appendDense(row0.data(), 4.0 * pool.lower()[0], 4.0 * pool.upper()[0]);
  }
  Check(pool.removeDuplicates(1e-9) == 1, "scaled duplicate removed");
  Check(pool.size() == before, "size after duplicate removal");
  CheckGram(pool, d, "after duplicate removal");

  // Bad input is refused without storing anything.
  const int size = pool.size();
  std::vector<double> bad(static_cast<size_t>(n), 0.0);
  bad[3] = std::nan("");
  ExpectThrow([&] { pool.appendDense(bad.data(), -1, 1); }, "NaN value");
  int32_t unsorted[2] = {5, 2};
  double two[2] = {1, 1};
  ExpectThrow([&] { pool.appendSparse(unsorted, two, 2, -1, 1); }, "unsorted");
  int32_t out_of_range[1] = {n};
  ExpectThrow([&] { pool.appendSparse(out_of_range, two, 1, -1, 1); }, "index out of range");
  std::vector<double> ok(static_cast<size_t>(n), 1.0);
  ExpectThrow([&] { pool.appendDense(ok.data(), 2, 1); }, "lower > upper");
  ExpectThrow([&] { CutPool p(0); }, "n = 0");
  Eigen::VectorXd neg = Eigen::VectorXd::Ones(n);
  neg[4] = -1;
  ExpectThrow([&] { pool.setDiagonal(neg); }, "negative D");
  Check(pool.size() == size, "nothing stored by rejected appends");
  Check(pool.memoryBytes() > static_cast<size_t>(pool.size() * pool.size()) * sizeof(double), "memory counts G");

  CheckFoldPaths();

  return advcorrect::testing::Report();
}
