// General sparse back end of the ADMM: modified Ruiz equilibration of the KKT matrix and
// a sparse LDLᵀ (Eigen's SimplicialLDLT under an AMD ordering, no pivoting — valid because
// the matrix [P̄+σI, Āᵀ; Ā, −diag(1/ρ)] is quasi-definite). The pattern is analysed once;
// ρ updates only change the (2,2) diagonal and refactorise numerically.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include <Eigen/OrderingMethods>
#include <Eigen/SparseCholesky>
#include <Eigen/SparseCore>

#include "qp/admm.h"

namespace advcorrect::qp {
namespace {

using Vec = Eigen::VectorXd;
using SpMat = Eigen::SparseMatrix<double, Eigen::ColMajor, int>;
using Ldlt = Eigen::SimplicialLDLT<SpMat, Eigen::Upper, Eigen::AMDOrdering<int>>;

constexpr double kMinScaling = 1e-4;
constexpr double kMaxScaling = 1e4;

double LimitScaling(double v) {
  if (!(v >= kMinScaling)) return 1.0;
  return std::min(v, kMaxScaling);
}

SpMat ToEigen(const CscMatrix& m) {
  SpMat out(m.nrows, m.ncols);
  if (m.ncols == 0) return out;
  std::vector<Eigen::Triplet<double>> t;
  t.reserve(m.nnz());
  for (int j = 0; j < m.ncols; ++j)
    for (int k = m.col_ptr[j]; k < m.col_ptr[j + 1]; ++k) t.emplace_back(m.row_index[k], j, m.values[k]);
  out.setFromTriplets(t.begin(), t.end());
  out.makeCompressed();
  return out;
}

// Number of strictly positive pivots of an LDLᵀ.
int PositivePivots(const Ldlt& ldlt) {
  const Vec d = ldlt.vectorD();
  int count = 0;
  for (int i = 0; i < d.size(); ++i) count += d[i] > 0;
  return count;
}

class SparseKktBackend final : public AdmmBackend {
 public:
  SparseKktBackend(const GeneralQp& qp, int scaling_iterations) {
    n = qp.n;
    m_rows = qp.m;
    for (int j = 0; j < n; ++j) {
      const bool has_lb = !qp.lb.empty() && std::isfinite(qp.lb[j]);
      const bool has_ub = !qp.ub.empty() && std::isfinite(qp.ub[j]);
      if (has_lb || has_ub) bound_index.push_back(j);
    }
    rows = m_rows + static_cast<int>(bound_index.size());
    P_ = ToEigen(qp.P);
    // Ā = [A; I_bounds]
    std::vector<Eigen::Triplet<double>> t;
    t.reserve(qp.A.nnz() + bound_index.size());
    for (int j = 0; j < n; ++j)
      for (int k = qp.A.col_ptr[j]; k < qp.A.col_ptr[j + 1]; ++k)
        t.emplace_back(qp.A.row_index[k], j, qp.A.values[k]);
    for (size_t k = 0; k < bound_index.size(); ++k) t.emplace_back(m_rows + static_cast<int>(k), bound_index[k], 1.0);
    A_.resize(rows, n);
    A_.setFromTriplets(t.begin(), t.end());
    A_.makeCompressed();
    q = Eigen::Map<const Vec>(qp.q.data(), n);
    l.resize(rows);
    u.resize(rows);
    for (int i = 0; i < m_rows; ++i) {
      l[i] = qp.l[i];
      u[i] = qp.u[i];
    }
    for (size_t k = 0; k < bound_index.size(); ++k) {
      const int j = bound_index[k];
      l[m_rows + k] = qp.lb.empty() ? -INFINITY : qp.lb[j];
      u[m_rows + k] = qp.ub.empty() ? INFINITY : qp.ub[j];
    }
    r = qp.r;
    Scale(scaling_iterations);
    At_ = A_.transpose();
    BuildKktPattern();
  }

  void MultiplyP(const Vec& x, Vec& out) const override { out.noalias() = P_.selfadjointView<Eigen::Upper>() * x; }
  void MultiplyA(const Vec& x, Vec& out) const override { out.noalias() = A_ * x; }
  void MultiplyAt(const Vec& y, Vec& out) const override { out.noalias() = At_ * y; }

  FactorResult Factor(double sigma, const Vec& rho) override {
    double* values = K_.valuePtr();
    for (int j = 0; j < n; ++j) values[diag_pos_[j]] = p_diag_[j] + sigma;
    for (int i = 0; i < rows; ++i) values[diag_pos_[n + i]] = -1.0 / rho[i];
    if (!analysed_) {
      ldlt_.analyzePattern(K_);
      analysed_ = true;
    }
    ldlt_.factorize(K_);
    if (ldlt_.info() != Eigen::Success) return FactorResult::kNonConvex;
    if (PositivePivots(ldlt_) != n) return FactorResult::kNonConvex;
    return FactorResult::kOk;
  }

  void Solve(const Vec& rx, const Vec& rz, Vec& x, Vec& nu) override {
    rhs_.resize(n + rows);
    rhs_.head(n) = rx;
    rhs_.tail(rows) = rz;
    sol_ = ldlt_.solve(rhs_);
    x = sol_.head(n);
    nu = sol_.tail(rows);
  }

  FactorResult FactorPolish(const std::vector<int>& active, double delta) override {
    const int s = static_cast<int>(active.size());
    std::vector<int> position(rows, -1);
    for (int k = 0; k < s; ++k) position[active[k]] = k;
    std::vector<Eigen::Triplet<double>> t;
    t.reserve(P_.nonZeros() + n + A_.nonZeros() + s);
    for (int j = 0; j < n; ++j) {
      for (SpMat::InnerIterator it(P_, j); it; ++it)
        if (it.row() < j) t.emplace_back(it.row(), j, it.value());
      t.emplace_back(j, j, p_diag_[j] + delta);
      for (SpMat::InnerIterator it(A_, j); it; ++it)
        if (position[it.row()] >= 0) t.emplace_back(j, n + position[it.row()], it.value());
    }
    for (int k = 0; k < s; ++k) t.emplace_back(n + k, n + k, -delta);
    SpMat kp(n + s, n + s);
    kp.setFromTriplets(t.begin(), t.end());
    polish_ldlt_.compute(kp);
    polish_size_ = s;
    if (polish_ldlt_.info() != Eigen::Success || PositivePivots(polish_ldlt_) != n) return FactorResult::kFailed;
    return FactorResult::kOk;
  }

  void SolvePolish(const Vec& rx, const Vec& rs, Vec& x, Vec& ys) override {
    Vec rhs(n + polish_size_);
    rhs.head(n) = rx;
    rhs.tail(polish_size_) = rs;
    Vec sol = polish_ldlt_.solve(rhs);
    x = sol.head(n);
    ys = sol.tail(polish_size_);
  }

  bool HessianLooksConvex(std::string* why) const override {
    for (int j = 0; j < n; ++j) {
      if (p_diag_[j] < 0) {
        std::ostringstream msg;
        msg << "P has a negative diagonal entry at column " << j << ": the problem is not convex";
        if (why) *why = msg.str();
        return false;
      }
    }
    return true;
  }

 private:
  void Scale(int iterations) {
    D = Vec::Ones(n);
    E = Vec::Ones(rows);
    c = 1.0;
    Vec col(n), row(rows), dd(n), ee(rows);
    for (int it = 0; it < iterations; ++it) {
      col.setZero();
      row.setZero();
      for (int j = 0; j < n; ++j) {
        for (SpMat::InnerIterator e(P_, j); e; ++e) {
          const double a = std::abs(e.value());
          col[j] = std::max(col[j], a);
          col[e.row()] = std::max(col[e.row()], a);
        }
        for (SpMat::InnerIterator e(A_, j); e; ++e) {
          const double a = std::abs(e.value());
          col[j] = std::max(col[j], a);
          row[e.row()] = std::max(row[e.row()], a);
        }
      }
      for (int j = 0; j < n; ++j) dd[j] = 1.0 / std::sqrt(LimitScaling(col[j]));
      for (int i = 0; i < rows; ++i) ee[i] = 1.0 / std::sqrt(LimitScaling(row[i]));
      for (int j = 0; j < n; ++j) {
        for (SpMat::InnerIterator e(P_, j); e; ++e) e.valueRef() *= dd[e.row()] * dd[j];
        for (SpMat::InnerIterator e(A_, j); e; ++e) e.valueRef() *= ee[e.row()] * dd[j];
      }
      q = q.cwiseProduct(dd);
      D = D.cwiseProduct(dd);
      E = E.cwiseProduct(ee);
      // Cost scaling.
      col.setZero();
      for (int j = 0; j < n; ++j)
        for (SpMat::InnerIterator e(P_, j); e; ++e) {
          const double a = std::abs(e.value());
          col[j] = std::max(col[j], a);
          col[e.row()] = std::max(col[e.row()], a);
        }
      const double mean = n > 0 ? col.mean() : 0.0;
      const double qn = q.size() ? q.lpNorm<Eigen::Infinity>() : 0.0;
      const double gamma = 1.0 / LimitScaling(std::max(mean, qn));
      P_ *= gamma;
      q *= gamma;
      c *= gamma;
    }
    l = l.cwiseProduct(E);
    u = u.cwiseProduct(E);
  }

  void BuildKktPattern() {
    p_diag_ = Vec::Zero(n);
    std::vector<Eigen::Triplet<double>> t;
    t.reserve(P_.nonZeros() + n + A_.nonZeros() + rows);
    for (int j = 0; j < n; ++j) {
      for (SpMat::InnerIterator it(P_, j); it; ++it) {
        if (it.row() == j) p_diag_[j] += it.value();
        else if (it.row() < j) t.emplace_back(it.row(), j, it.value());
      }
      t.emplace_back(j, j, 1.0);  // placeholder, set by Factor
    }
    for (int j = 0; j < n; ++j)
      for (SpMat::InnerIterator it(A_, j); it; ++it) t.emplace_back(j, n + it.row(), it.value());
    for (int i = 0; i < rows; ++i) t.emplace_back(n + i, n + i, -1.0);
    K_.resize(n + rows, n + rows);
    K_.setFromTriplets(t.begin(), t.end());
    K_.makeCompressed();
    // The diagonal is the last entry of each column of an upper triangle.
    diag_pos_.resize(n + rows);
    for (int j = 0; j < n + rows; ++j) diag_pos_[j] = K_.outerIndexPtr()[j + 1] - 1;
  }

  SpMat P_, A_, At_, K_;
  Vec p_diag_;
  std::vector<int> diag_pos_;
  Ldlt ldlt_, polish_ldlt_;
  bool analysed_ = false;
  int polish_size_ = 0;
  Vec rhs_, sol_;
};

// Original-data helpers for the reported residuals.
void CscMultiplyAdd(const CscMatrix& m, const double* x, double* y) {
  for (int j = 0; j < m.ncols; ++j)
    for (int k = m.col_ptr[j]; k < m.col_ptr[j + 1]; ++k) y[m.row_index[k]] += m.values[k] * x[j];
}
void CscTransposeMultiplyAdd(const CscMatrix& m, const double* y, double* x) {
  for (int j = 0; j < m.ncols; ++j) {
    double s = 0;
    for (int k = m.col_ptr[j]; k < m.col_ptr[j + 1]; ++k) s += m.values[k] * y[m.row_index[k]];
    x[j] += s;
  }
}
void SymUpperMultiply(const CscMatrix& p, const double* x, double* y) {
  for (int j = 0; j < p.ncols; ++j)
    for (int k = p.col_ptr[j]; k < p.col_ptr[j + 1]; ++k) {
      const int i = p.row_index[k];
      y[i] += p.values[k] * x[j];
      if (i != j) y[j] += p.values[k] * x[i];
    }
}

double Support(double yi, double lo, double hi, double value) {
  if (yi > 0) return yi * (std::isfinite(hi) ? hi : value);
  if (yi < 0) return yi * (std::isfinite(lo) ? lo : value);
  return 0.0;
}

}  // namespace

std::string ValidateGeneralQp(const GeneralQp& qp) {
  std::ostringstream msg;
  auto check_csc = [&](const CscMatrix& mat, const char* name, int nrows, int ncols, bool upper) -> bool {
    if (mat.nrows != nrows || mat.ncols != ncols) {
      msg << name << " must be " << nrows << "×" << ncols << ", got " << mat.nrows << "×" << mat.ncols;
      return false;
    }
    if (static_cast<int>(mat.col_ptr.size()) != ncols + 1 || mat.col_ptr[0] != 0) {
      msg << name << ".colPtr must have length " << ncols + 1 << " and start at 0";
      return false;
    }
    for (int j = 0; j < ncols; ++j)
      if (mat.col_ptr[j + 1] < mat.col_ptr[j]) {
        msg << name << ".colPtr must be non-decreasing (column " << j << ")";
        return false;
      }
    const size_t nnz = static_cast<size_t>(mat.col_ptr[ncols]);
    if (mat.row_index.size() != nnz || mat.values.size() != nnz) {
      msg << name << ".rowIndex and " << name << ".values must have length colPtr[ncols] = " << nnz;
      return false;
    }
    for (int j = 0; j < ncols; ++j)
      for (int k = mat.col_ptr[j]; k < mat.col_ptr[j + 1]; ++k) {
        const int i = mat.row_index[k];
        if (i < 0 || i >= nrows) {
          msg << name << ".rowIndex[" << k << "] = " << i << " is out of range [0, " << nrows << ")";
          return false;
        }
        if (k > mat.col_ptr[j] && i <= mat.row_index[k - 1]) {
          msg << name << ".rowIndex must be strictly increasing within a column (column " << j << ")";
          return false;
        }
        if (upper && i > j) {
          msg << name << " must hold only the upper triangle (entry at row " << i << ", column " << j << ")";
          return false;
        }
        if (!std::isfinite(mat.values[k])) {
          msg << name << ".values[" << k << "] is not finite";
          return false;
        }
      }
    return true;
  };
  if (qp.n < 0 || qp.m < 0) return "n and m must be non-negative";
  if (!check_csc(qp.P, "P", qp.n, qp.n, true)) return msg.str();
  if (!check_csc(qp.A, "A", qp.m, qp.n, false)) return msg.str();
  if (static_cast<int>(qp.q.size()) != qp.n) return "q must have length n";
  for (int j = 0; j < qp.n; ++j)
    if (!std::isfinite(qp.q[j])) return "q[" + std::to_string(j) + "] is not finite";
  if (!std::isfinite(qp.r)) return "r is not finite";
  if (static_cast<int>(qp.l.size()) != qp.m || static_cast<int>(qp.u.size()) != qp.m) return "l and u must have length m";
  for (int i = 0; i < qp.m; ++i) {
    if (std::isnan(qp.l[i]) || std::isnan(qp.u[i])) return "row bound " + std::to_string(i) + " is NaN";
    if (qp.l[i] > qp.u[i]) return "row " + std::to_string(i) + " has lower bound > upper bound";
    if (qp.l[i] == INFINITY || qp.u[i] == -INFINITY) return "row " + std::to_string(i) + " has an infinite bound on the wrong side";
  }
  if (!qp.lb.empty() && static_cast<int>(qp.lb.size()) != qp.n) return "lb must be empty or have length n";
  if (!qp.ub.empty() && static_cast<int>(qp.ub.size()) != qp.n) return "ub must be empty or have length n";
  for (int j = 0; j < qp.n; ++j) {
    const double lo = qp.lb.empty() ? -INFINITY : qp.lb[j];
    const double hi = qp.ub.empty() ? INFINITY : qp.ub[j];
    if (std::isnan(lo) || std::isnan(hi)) return "variable bound " + std::to_string(j) + " is NaN";
    if (lo > hi) return "variable " + std::to_string(j) + " has lower bound > upper bound";
    if (lo == INFINITY || hi == -INFINITY) return "variable " + std::to_string(j) + " has an infinite bound on the wrong side";
  }
  return "";
}

AdmmResult SolveAdmm(const GeneralQp& qp, const AdmmSettings& settings, const CutQpControl& control) {
  const std::string invalid = ValidateGeneralQp(qp);
  if (!invalid.empty()) throw std::invalid_argument(invalid);
  const auto start = std::chrono::steady_clock::now();
  AdmmResult result;
  SparseKktBackend backend(qp, std::max(0, settings.scaling));
  const int n = qp.n, m = qp.m;
  const int nb = static_cast<int>(backend.bound_index.size());
  Vec warm_y_full;
  const Vec* warm_x = settings.warm_x.size() == n ? &settings.warm_x : nullptr;
  const Vec* warm_y = nullptr;
  if (settings.warm_y.size() == m) {
    warm_y_full = Vec::Zero(backend.rows);
    warm_y_full.head(m) = settings.warm_y;
    if (settings.warm_z.size() == n)
      for (int k = 0; k < nb; ++k) warm_y_full[m + k] = settings.warm_z[backend.bound_index[k]];
    warm_y = &warm_y_full;
  }
  result.setup_time_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  RunAdmm(backend, settings, control, warm_x, warm_y, result);

  // Split the multipliers of all rows into rows of A and variable bounds.
  Vec y_all = result.y;
  result.y = y_all.head(m);
  result.z = Vec::Zero(n);
  for (int k = 0; k < nb; ++k) result.z[backend.bound_index[k]] = y_all[m + k];
  if (result.certificate_y.size() == backend.rows) {
    Vec cert = result.certificate_y;
    result.certificate_y = cert.head(m);
    result.certificate_z = Vec::Zero(n);
    for (int k = 0; k < nb; ++k) result.certificate_z[backend.bound_index[k]] = cert[m + k];
  }

  // Residuals and objective on the original data.
  const Vec& x = result.x;
  Vec px = Vec::Zero(n), ax = Vec::Zero(m), grad = Vec::Zero(n);
  SymUpperMultiply(qp.P, x.data(), px.data());
  CscMultiplyAdd(qp.A, x.data(), ax.data());
  const Vec q = Eigen::Map<const Vec>(qp.q.data(), n);
  grad = px + q + result.z;
  CscTransposeMultiplyAdd(qp.A, result.y.data(), grad.data());
  double prim = 0, support = 0;
  for (int i = 0; i < m; ++i) {
    prim = std::max({prim, qp.l[i] - ax[i], ax[i] - qp.u[i]});
    support += Support(result.y[i], qp.l[i], qp.u[i], ax[i]);
  }
  for (int j = 0; j < n; ++j) {
    const double lo = qp.lb.empty() ? -INFINITY : qp.lb[j];
    const double hi = qp.ub.empty() ? INFINITY : qp.ub[j];
    prim = std::max({prim, lo - x[j], x[j] - hi});
    support += Support(result.z[j], lo, hi, x[j]);
  }
  const double xpx = x.dot(px), qx = q.dot(x);
  result.primal_residual = n + m > 0 ? prim : 0.0;
  result.dual_residual = n > 0 ? grad.lpNorm<Eigen::Infinity>() : 0.0;
  result.objective = 0.5 * xpx + qx + qp.r;
  result.gap = std::abs(xpx + qx + support);
  result.solve_time_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace advcorrect::qp
