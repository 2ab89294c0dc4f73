#include "cuts/factored_pool_solve.h"

#include <utility>

#include "cuts/pool_solve.h"  // SolveClock

namespace advcorrect::cuts {

std::optional<qp::DualWorkingSet> WarmWorkingSet(const FactoredCutPool& pool) {
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
  return warm;
}

qp::CutQpResult SolveDualOnFactoredPool(FactoredCutPool& pool, const double* w0, const qp::CutQpSettings& settings,
                                        const qp::CutQpControl& control) {
  const SolveClock clock(settings.time_limit_ms);
  if (!pool.updateGram([&] { return control.cancelled() || clock.expired(); })) {
    qp::CutQpResult stopped = qp::UnstartedResult(
        pool.problem(w0, false), control.cancelled() ? qp::CutQpStatus::kAborted : qp::CutQpStatus::kTimeLimitReached);
    stopped.setup_time_ms = stopped.solve_time_ms = clock.elapsedMs();
    return stopped;
  }
  qp::CutQpProblem problem = pool.problem(w0);
  const double setup_ms = clock.elapsedMs();
  qp::CutQpSettings remaining = settings;
  remaining.time_limit_ms = clock.remainingMs();
  const std::optional<qp::DualWorkingSet> warm = settings.warm_start ? WarmWorkingSet(pool) : std::nullopt;
  qp::DualWorkingSet final_set;
  qp::CutQpResult result = qp::SolveDualActiveSet(problem, remaining, control, warm ? &*warm : nullptr, &final_set);
  result.setup_time_ms = setup_ms;
  result.solve_time_ms += setup_ms;
  if (result.status == qp::CutQpStatus::kSolved || result.status == qp::CutQpStatus::kSolvedInaccurate) {
    DualWarmState& state = pool.dualWarmState();
    state.row_ids.clear();
    for (int position : final_set.rows) state.row_ids.push_back(pool.row(position).id);
    state.row_signs = final_set.row_signs;
    state.bound_vars.clear();
    state.bound_signs.clear();
    state.valid = true;
    pool.recordSolve(result.y);
  }
  return result;
}

}  // namespace advcorrect::cuts
