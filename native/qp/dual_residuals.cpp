// KKT residuals of the cut QP (declared in cut_qp.h), shared by all its solvers.
#include <algorithm>
#include <cmath>
#include <vector>

#include "qp/cut_qp.h"

namespace advcorrect::qp {

namespace {

// Distance of value v to the bound its multiplier says is active (0 when the multiplier is 0).
double ComplementarityTerm(double multiplier, double value, double lower, double upper) {
  if (multiplier > 0) return std::isfinite(upper) ? multiplier * std::abs(upper - value) : kInfinity;
  if (multiplier < 0) return std::isfinite(lower) ? -multiplier * std::abs(value - lower) : kInfinity;
  return 0;
}

double Violation(double value, double lower, double upper) {
  return std::max({0.0, lower - value, value - upper});
}

}  // namespace

CutQpResiduals ComputeResiduals(const CutQpProblem& problem, const Eigen::VectorXd& x,
                                const Eigen::VectorXd& y, const Eigen::VectorXd& z,
                                double* objective) {
  const int n = problem.n;
  const int m = problem.m;
  CutQpResiduals res;
  std::vector<double> activity(static_cast<size_t>(m), 0.0);
  if (m > 0) problem.rows->multiply(x.data(), activity.data());
  for (int i = 0; i < m; ++i) {
    const double value = activity[static_cast<size_t>(i)];
    res.primal = std::max(res.primal, Violation(value, problem.row_lower[i], problem.row_upper[i]));
    const double yi = i < y.size() ? y[i] : 0.0;
    res.gap = std::max(res.gap, ComplementarityTerm(yi, value, problem.row_lower[i], problem.row_upper[i]));
  }
  // Stationarity r = D(x − w₀) + Aᵀy + z.
  Eigen::VectorXd r(n);
  double obj = 0;
  for (int j = 0; j < n; ++j) {
    const double d = problem.diagonal ? problem.diagonal[j] : 1.0;
    const double diff = x[j] - problem.w0[j];
    obj += 0.5 * d * diff * diff;
    r[j] = d * diff + (j < z.size() ? z[j] : 0.0);
    const double lo = problem.var_lower ? problem.var_lower[j] : -kInfinity;
    const double hi = problem.var_upper ? problem.var_upper[j] : kInfinity;
    res.primal = std::max(res.primal, Violation(x[j], lo, hi));
    if (j < z.size()) res.gap = std::max(res.gap, ComplementarityTerm(z[j], x[j], lo, hi));
  }
  if (m > 0 && y.size() == m) problem.rows->multiplyTransposeAdd(y.data(), 1.0, r.data());
  res.dual = n > 0 ? r.lpNorm<Eigen::Infinity>() : 0.0;
  if (objective) *objective = obj;
  return res;
}

CutQpResult UnstartedResult(const CutQpProblem& problem, CutQpStatus status) {
  CutQpResult result;
  result.status = status;
  result.x = Eigen::Map<const Eigen::VectorXd>(problem.w0, problem.n);
  result.y = Eigen::VectorXd::Zero(problem.m);
  result.z = Eigen::VectorXd::Zero(problem.n);
  result.residuals = ComputeResiduals(problem, result.x, result.y, result.z, &result.objective);
  return result;
}

}  // namespace advcorrect::qp
