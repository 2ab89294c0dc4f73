#include "cuts/pool_solve.h"

#include <utility>

namespace advcorrect::cuts {

namespace {

bool Solved(qp::CutQpStatus status) {
  return status == qp::CutQpStatus::kSolved || status == qp::CutQpStatus::kSolvedInaccurate;
}

}  // namespace

std::optional<qp::CutQpResult> FoldBeforeSolve(CutPool& pool, const double* w0, const qp::CutQpControl& control,
                                               const SolveClock& clock) {
  if (pool.updateGram([&] { return control.cancelled() || clock.expired(); })) return std::nullopt;
  qp::CutQpResult result = qp::UnstartedResult(
      pool.problem(w0, false), control.cancelled() ? qp::CutQpStatus::kAborted : qp::CutQpStatus::kTimeLimitReached);
  result.setup_time_ms = result.solve_time_ms = clock.elapsedMs();
  return result;
}

std::optional<qp::DualWorkingSet> WarmWorkingSet(const CutPool& pool) {
  const DualWarmState& state = pool.dualWarmState();
  if (!state.valid) return std::nullopt;
  qp::DualWorkingSet warm;
  for (size_t k = 0; k < state.row_ids.size(); ++k) {
    const int position = pool.positionOf(state.row_ids[k]);
    if (position >= 0) {
      warm.rows.push_back(position);
      warm.row_signs.push_back(state.row_signs[k]);
    }
  }
  warm.bounds = state.bound_vars;
  warm.bound_signs = state.bound_signs;
  return warm;
}

void RememberWorkingSet(CutPool& pool, const qp::DualWorkingSet& final_set) {
  DualWarmState& state = pool.dualWarmState();
  state.row_ids.clear();
  for (int position : final_set.rows) state.row_ids.push_back(pool.row(position).id);
  state.row_signs = final_set.row_signs;
  state.bound_vars = final_set.bounds;
  state.bound_signs = final_set.bound_signs;
  state.valid = true;
}

void RecordDualSolve(CutPool& pool, const qp::CutQpResult& result, const qp::DualWorkingSet& final_set) {
  if (!Solved(result.status)) return;
  RememberWorkingSet(pool, final_set);
  pool.recordSolve(result.y);
}

void RecordAdmmSolve(CutPool& pool, const qp::CutQpResult& result) {
  if (Solved(result.status)) pool.recordSolve(result.y);
}

bool WarmStartAdmmFromPool(const CutPool& pool, const qp::CutQpProblem& problem, qp::AdmmSettings& settings) {
  const int n = problem.n, m = problem.m;
  if (settings.warm_y.size() != 0 || m <= 0) return false;
  Eigen::VectorXd y(m);
  bool any = false;
  for (int i = 0; i < m; ++i) {
    y[i] = pool.row(i).last_multiplier;
    any = any || y[i] != 0;
  }
  if (!any) return false;
  // Stationarity D(x − w₀) + Aᵀy + z = 0: x = w₀ − D⁻¹Aᵀy clipped to the bounds, and the
  // bound multipliers z = D(x_unclipped − x) take up the difference.
  Eigen::VectorXd x = Eigen::Map<const Eigen::VectorXd>(problem.w0, n);
  Eigen::VectorXd aty = Eigen::VectorXd::Zero(n), z = Eigen::VectorXd::Zero(n);
  pool.multiplyTransposeAdd(y.data(), 1.0, aty.data());
  for (int j = 0; j < n; ++j) {
    const double d = problem.diagonal ? problem.diagonal[j] : 1.0;
    const double free_x = x[j] - aty[j] / d;
    double clipped = free_x;
    if (problem.var_lower) clipped = std::max(clipped, problem.var_lower[j]);
    if (problem.var_upper) clipped = std::min(clipped, problem.var_upper[j]);
    x[j] = clipped;
    z[j] = d * (free_x - clipped);
  }
  settings.warm_x = std::move(x);
  settings.warm_y = std::move(y);
  settings.warm_z = std::move(z);
  return true;
}

qp::CutQpResult SolveDualOnPool(CutPool& pool, const double* w0, const qp::CutQpSettings& settings,
                                const qp::CutQpControl& control) {
  // The time limit covers the whole solve, folding new rows into G included.
  const SolveClock clock(settings.time_limit_ms);
  if (std::optional<qp::CutQpResult> stopped = FoldBeforeSolve(pool, w0, control, clock)) return std::move(*stopped);
  qp::CutQpProblem problem = pool.problem(w0);
  const double setup_ms = clock.elapsedMs();
  qp::CutQpSettings remaining = settings;
  remaining.time_limit_ms = clock.remainingMs();
  const std::optional<qp::DualWorkingSet> warm = WarmWorkingSet(pool);
  qp::DualWorkingSet final_set;
  qp::CutQpResult result = qp::SolveDualActiveSet(problem, remaining, control, warm ? &*warm : nullptr, &final_set);
  result.setup_time_ms = setup_ms;
  result.solve_time_ms += setup_ms;
  RecordDualSolve(pool, result, final_set);
  return result;
}

qp::AdmmResult SolveAdmmOnPool(CutPool& pool, const double* w0, qp::AdmmSettings settings, bool warm_start,
                               const qp::CutQpControl& control) {
  // The time limit covers the whole solve, folding new rows into G included.
  const SolveClock clock(settings.time_limit_ms);
  if (std::optional<qp::CutQpResult> stopped = FoldBeforeSolve(pool, w0, control, clock)) {
    qp::AdmmResult detail;
    detail.status = stopped->status;
    detail.x = stopped->x;
    detail.y = stopped->y;
    detail.z = stopped->z;
    detail.objective = stopped->objective;
    detail.primal_residual = stopped->residuals.primal;
    detail.dual_residual = stopped->residuals.dual;
    detail.gap = stopped->residuals.gap;
    detail.setup_time_ms = detail.solve_time_ms = stopped->solve_time_ms;
    return detail;
  }
  qp::CutQpProblem problem = pool.problem(w0);
  const double pool_setup_ms = clock.elapsedMs();
  settings.time_limit_ms = clock.remainingMs();
  if (warm_start) WarmStartAdmmFromPool(pool, problem, settings);
  qp::AdmmResult detail;
  const qp::CutQpResult out = qp::SolveCutQpAdmm(problem, settings, control, &detail);
  RecordAdmmSolve(pool, out);
  detail.certificate_y = out.certificate_y;
  detail.certificate_z = out.certificate_z;
  // Bringing G and A w₀ up to date is set-up, and part of the solve time as for general QPs.
  detail.setup_time_ms += pool_setup_ms;
  detail.solve_time_ms += pool_setup_ms;
  return detail;
}

}  // namespace advcorrect::cuts
