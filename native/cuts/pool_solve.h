// Solving the cut QP that a cut pool holds: the steps around a solver call that both solvers
// share — folding pending rows into G within the time limit, a warm start from what the pool
// remembers of its last solve, and recording the outcome for the next one. The Node-API
// binding only converts its arguments and calls SolveDualOnPool / SolveAdmmOnPool.
#pragma once
#include <algorithm>
#include <chrono>
#include <optional>

#include <Eigen/Dense>

#include "cuts/cut_pool.h"
#include "qp/admm.h"
#include "qp/cut_qp.h"
#include "qp/dual_active_set.h"

namespace advcorrect::cuts {

// Wall time since a pool solve began, against its time limit (0 = none), which covers the
// pool's set-up (folding rows into G) as well as the solver.
class SolveClock {
 public:
  explicit SolveClock(double limit_ms) : limit_ms_(limit_ms), started_(std::chrono::steady_clock::now()) {}
  double elapsedMs() const {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started_).count();
  }
  bool expired() const { return limit_ms_ > 0 && elapsedMs() >= limit_ms_; }
  // The limit left for the solver (0 = none).
  double remainingMs() const { return limit_ms_ > 0 ? std::max(1e-3, limit_ms_ - elapsedMs()) : 0.0; }

 private:
  double limit_ms_;
  std::chrono::steady_clock::time_point started_;
};

// Folds the pool's pending rows into G before a solve, stopping between panels when the
// control is cancelled or `clock` runs out. When it stopped, returns the result to report
// (status aborted or time_limit_reached, x = w₀, zero multipliers); the next solve continues
// the fold. w0 holds pool.n() values.
std::optional<qp::CutQpResult> FoldBeforeSolve(CutPool& pool, const double* w0, const qp::CutQpControl& control,
                                               const SolveClock& clock);

// The working set the pool remembers (by row id) mapped onto its current rows: rows removed
// since then drop out together with their signs, the order of the others is kept, variable
// bounds are kept as they are. nullopt when the pool remembers none.
std::optional<qp::DualWorkingSet> WarmWorkingSet(const CutPool& pool);

// Remembers `final_set` (row positions of the pool as it is now) by row id for the next solve.
void RememberWorkingSet(CutPool& pool, const qp::DualWorkingSet& final_set);

// After a dual active-set solve: when it solved (accurately or not), remembers its final
// working set and records the row multipliers (CutPool::recordSolve); otherwise nothing.
void RecordDualSolve(CutPool& pool, const qp::CutQpResult& result, const qp::DualWorkingSet& final_set);

// After an ADMM solve: records the row multipliers when it solved (accurately or not).
void RecordAdmmSolve(CutPool& pool, const qp::CutQpResult& result);

// An ADMM warm start from the multipliers the pool recorded at its last solve (rows appended
// since have multiplier 0, removed rows are gone): y = those multipliers, and from
// stationarity D(x − w₀) + Aᵀy + z = 0, x = w₀ − D⁻¹Aᵀy clipped to the variable bounds with
// z = D(x_unclipped − x). Sets settings.warm_x/warm_y/warm_z and returns true; leaves the
// settings alone and returns false when they already carry a warm_y, when the pool is empty,
// or when every recorded multiplier is 0.
bool WarmStartAdmmFromPool(const CutPool& pool, const qp::CutQpProblem& problem, qp::AdmmSettings& settings);

// The dual active-set method on the pool's QP: FoldBeforeSolve, the solve warm-started from
// the remembered working set (when settings.warm_start), RecordDualSolve. The time limit
// covers the fold; setup_time_ms (folding, A w₀) is part of solve_time_ms.
qp::CutQpResult SolveDualOnPool(CutPool& pool, const double* w0, const qp::CutQpSettings& settings,
                                const qp::CutQpControl& control);

// ADMM on the pool's QP: FoldBeforeSolve, WarmStartAdmmFromPool when warm_start, the solve,
// RecordAdmmSolve. The result carries the ADMM detail with the Farkas certificate of the cut
// QP; setup_time_ms (folding, A w₀) is part of solve_time_ms.
qp::AdmmResult SolveAdmmOnPool(CutPool& pool, const double* w0, qp::AdmmSettings settings, bool warm_start,
                               const qp::CutQpControl& control);

}  // namespace advcorrect::cuts
